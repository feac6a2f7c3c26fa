"""REST API routes of this app, mounted under /api/v1/ by whaleproject.urls."""

from django.urls import path

from detection.api import views as api

urlpatterns = [
    path("auth/token/", api.TokenObtainView.as_view(), name="api-token"),
    path("auth/token/refresh/", api.TokenRefreshRotateView.as_view(), name="api-token-refresh"),
    path("whales/", api.WhaleListView.as_view(), name="api-whales"),
    path("whales/<str:txid>/", api.WhaleDetailView.as_view(), name="api-whale"),
    path("stats/", api.StatsView.as_view(), name="api-stats"),
]
