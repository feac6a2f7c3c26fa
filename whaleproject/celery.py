"""The Celery app. Its settings live in whaleproject.settings under the CELERY_ prefix."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whaleproject.settings")

app = Celery("whaleproject")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["whaleproject"])
