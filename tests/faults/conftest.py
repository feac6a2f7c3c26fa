"""The alert tests' real servers (HTTP receiver, Celery worker subprocesses), shared here."""

from tests.alerts.conftest import (  # noqa: F401 - pytest finds fixtures by name
    allow_loopback,
    receiver,
    whales,
    worker_factory,
)
