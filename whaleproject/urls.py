from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from whaleproject.metrics import metrics_view
from whaleproject.views import health

api_v1 = [
    path("health/", health, name="health"),
    path("", include("detection.api.urls")),
    path("", include("alerts.api_urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    # Prometheus scrapes; guarded by WHALE_METRICS_TOKEN / WHALE_METRICS_ALLOW.
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("alerts/", include("alerts.urls")),
    path("", include("dashboard.urls")),
]

# Unknown /api/ paths and crashes answer in the API's JSON error shape; other pages are unchanged.
handler404 = "whaleproject.api_errors.not_found"
handler500 = "whaleproject.api_errors.server_error"
