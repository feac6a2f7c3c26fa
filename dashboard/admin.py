from django.contrib import admin

from dashboard.models import Profile


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "time_zone")
    search_fields = ("user__username", "user__email")
