"""The Celery app. Its settings live in whaleproject.settings under the CELERY_ prefix."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whaleproject.settings")

app = Celery("whaleproject")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["whaleproject"])

# Message priorities. kombu's Redis transport keeps one list per step (0, 3, 6, 9) and a worker
# takes from the lowest number first. Work that comes as a stream (the mempool's new whales and
# replacements, a few a second, and their alerts) goes before work that comes in bursts or
# backlogs (a block confirming hundreds of whales at once, retries, the deliveries a receiver
# missed while it was down): such a burst takes its minute, but the next new whale does not wait
# behind it (docs/RELIABILITY.md, "Bursts and backlogs"). Nothing is starved: the stream leaves
# the workers idle most of the time.
PRIORITY_STREAM = 0
PRIORITY_BACKLOG = 6
