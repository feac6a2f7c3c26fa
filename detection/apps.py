from django.apps import AppConfig

from whaleproject.metrics import register_web_collector


class DetectionConfig(AppConfig):
    name = "detection"
    verbose_name = "Whale detection"

    def ready(self):
        # Models import once the app registry is ready, hence here.
        from detection.metrics import AccuracyCollector

        register_web_collector(AccuracyCollector)
