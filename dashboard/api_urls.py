"""REST API routes of this app (accounts), mounted under /api/v1/ by whaleproject.urls."""

from django.urls import path

from dashboard.api_views import LogoutView

urlpatterns = [
    path("auth/logout/", LogoutView.as_view(), name="api-logout"),
]
