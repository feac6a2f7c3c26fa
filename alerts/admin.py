from django.contrib import admin
from django.db import transaction

from alerts import watchlists
from alerts.models import (
    ChatEndpoint,
    Delivery,
    DeliveryAttempt,
    EventFanOut,
    Subscription,
    TelegramBotState,
    WebhookEndpoint,
)
from alerts.watchlists import PrivateLabel, WatchHit, WatchlistEntry
from detection import watching


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "active", "min_sats", "email", "max_per_hour", "created_at")
    list_filter = ("active", "email")
    search_fields = ("name", "owner__username", "owner__email")
    raw_id_fields = ("owner",)
    filter_horizontal = ("webhooks", "chats")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("url", "owner", "active", "consecutive_failures", "last_success_at")
    list_filter = ("active",)
    search_fields = ("url", "owner__username")
    raw_id_fields = ("owner",)
    # Secrets stay out of the admin: an operator never needs to read a user's signing key.
    exclude = ("secret", "previous_secret")
    readonly_fields = ("public_id", "previous_secret_expires_at", "failing_since", "created_at")


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ("number", "started_at", "outcome", "status_code", "error", "duration_ms")
    readonly_fields = fields


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("public_id", "kind", "channel", "owner", "status", "attempts", "created_at")
    list_filter = ("status", "channel", "kind")
    search_fields = ("public_id", "message_id", "owner__username")
    raw_id_fields = ("owner", "event", "subscription", "endpoint", "chat", "digest")
    inlines = [AttemptInline]


@admin.register(EventFanOut)
class EventFanOutAdmin(admin.ModelAdmin):
    list_display = ("event", "deliveries", "done_at")
    raw_id_fields = ("event",)


@admin.register(ChatEndpoint)
class ChatEndpointAdmin(admin.ModelAdmin):
    list_display = ("__str__", "owner", "service", "active", "muted_until", "last_success_at")
    list_filter = ("service", "active")
    search_fields = ("label", "owner__username")
    raw_id_fields = ("owner",)
    # The hook URL is a credential for the user's chat; admins see its shortened form.
    exclude = ("url",)
    readonly_fields = ("short_url",)


@admin.register(TelegramBotState)
class TelegramBotStateAdmin(admin.ModelAdmin):
    list_display = ("bot_username", "update_offset", "updated_at")


# --- Watchlists (issue 21) --------------------------------------------------------------------


@admin.register(WatchlistEntry)
class WatchlistEntryAdmin(admin.ModelAdmin):
    list_display = ("kind", "value", "owner", "direction", "active", "created_at")
    list_filter = ("kind", "direction", "active")
    search_fields = ("value", "owner__username")
    raw_id_fields = ("owner", "delivery")
    readonly_fields = ("public_id", "watch", "receive_stop", "change_stop", "created_at")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        watchlists.sync_targets(obj)
        transaction.on_commit(watching.bump_version)

    def delete_model(self, request, obj):
        watchlists.delete_entry(obj)


@admin.register(WatchHit)
class WatchHitAdmin(admin.ModelAdmin):
    list_display = ("entry", "event", "direction", "amount_sats", "created_at")
    list_filter = ("direction",)
    raw_id_fields = ("entry", "event")


@admin.action(description="Promote to a shared label (source names the user)")
def promote_labels(modeladmin, request, queryset):
    for label in queryset:
        label.promote()
    modeladmin.message_user(request, f"{queryset.count()} label(s) now shared.")


@admin.register(PrivateLabel)
class PrivateLabelAdmin(admin.ModelAdmin):
    list_display = ("address", "name", "owner", "promoted", "created_at")
    search_fields = ("address", "name", "owner__username")
    raw_id_fields = ("owner", "promoted")
    actions = [promote_labels]
