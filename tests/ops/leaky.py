"""A view and a task that leak every configured secret into their logs, on purpose: the log
formatters must take them out (test_logs.py)."""

import logging

from celery import shared_task
from django.conf import settings
from django.http import HttpResponse
from django.urls import include, path

log = logging.getLogger("tests.ops.leaky")

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJ1c2VyX2lkIjo0MiwidG9rZW5fdHlwZSI6ImFjY2VzcyJ9."
    "c2lnbmF0dXJlLXRoYXQtaXMtbm90LXJlYWxseS1hLXNpZ25hdHVyZQ"
)


def leak_everything() -> str:
    return (
        f"key={settings.SECRET_KEY} db={settings.DATABASE_URL} "
        f"smtp={settings.EMAIL_HOST_PASSWORD} metrics={settings.WHALE_METRICS_TOKEN} "
        f"webhook={WEBHOOK_SECRET} jwt={JWT} header=Bearer {settings.WHALE_METRICS_TOKEN}"
    )


def leaky_view(request):
    log.info("handling with %s", leak_everything())
    if request.GET.get("crash"):
        raise RuntimeError(f"crash while holding {leak_everything()}")
    return HttpResponse("ok")


@shared_task(name="tests.ops.leaky_task")
def leaky_task(crash: bool = False) -> None:
    log.warning("task sees %s", leak_everything())
    if crash:
        raise RuntimeError(f"task crash with {leak_everything()}")


urlpatterns = [
    path("leaky/", leaky_view),
    path("", include("whaleproject.urls")),
]
