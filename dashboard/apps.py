from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Dashboard and accounts"

    def ready(self):
        # The receivers live in dashboard.receivers; importing it here connects them.
        from dashboard import receivers  # noqa: F401 - app registry must be ready first
