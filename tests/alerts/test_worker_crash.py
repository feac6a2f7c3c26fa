"""A worker killed mid-send: the sweeper sends again, the receiver deduplicates by webhook-id."""

from __future__ import annotations

import time

import pytest

from alerts.models import AttemptOutcome, Delivery, DeliveryStatus
from alerts.sweeper import sweep
from tests.alerts.conftest import ZERO_FEE_927, make_endpoint, make_subscription, record

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_until(predicate, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_worker_mid_send_is_recovered_by_the_sweeper(
    alice, whales, receiver, allow_loopback, worker_factory
):
    endpoint = make_endpoint(alice, receiver.url)
    make_subscription(alice, endpoints=[endpoint], email=False)
    receiver.script = ["hang"]  # the first request never gets an answer
    first_worker = worker_factory("alerts-crash-1")

    event = record("seen", whales[ZERO_FEE_927])  # commits: the send is queued on Redis
    receiver.wait_for(1, timeout=30)
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.SENDING

    first_worker.kill()  # kill -9 while the request is in flight
    # A new worker whose broker hands back unacknowledged tasks after 5 s: the redelivered
    # task must find the row claimed and do nothing; the sweeper does the resend.
    worker_factory("alerts-crash-2", CELERY_VISIBILITY_TIMEOUT="5")
    allow_loopback.WHALE_DELIVERY_STRANDED_SECONDS = 1
    time.sleep(1.2)
    result = sweep()
    assert result.stranded == 1

    second = receiver.wait_for(2, timeout=30)[1]
    delivery = wait_until(
        lambda: Delivery.objects.filter(status=DeliveryStatus.DELIVERED).first(),
        what="delivery to be delivered",
    )
    time.sleep(6)  # let the redelivered task (visibility timeout 5 s) run, and do nothing
    first = receiver.requests[0]
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == str(event.uid)
    assert first.body == second.body
    assert len(receiver.requests) == 2
    assert list(receiver.processed) == [str(event.uid)]  # the receiver processed it once
    assert Delivery.objects.count() == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 2
    interrupted, delivered = delivery.attempt_set.all()
    assert interrupted.outcome == AttemptOutcome.INTERRUPTED
    assert delivered.outcome == AttemptOutcome.DELIVERED
