from django.apps import AppConfig

from whaleproject.metrics import register_web_collector


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self):
        # Models and receivers import once the app registry is ready, hence here.
        from alerts import receivers  # noqa: F401 - connects the signal receivers
        from alerts.metrics import DeliveryCollector

        register_web_collector(DeliveryCollector)
