"""A webhook receiver that accepts the connection and never answers: the real worker gives up
after WHALE_OUTBOUND_TOTAL_TIMEOUT, records the failed try, and the retry (about 5 s later, queued
by beat's alert sweep from the row's next_attempt_at) delivers the same message, with the same
webhook-id, exactly once."""

from __future__ import annotations

import time

import pytest

from alerts.delivery import RETRY_DELAYS
from alerts.models import AttemptOutcome, Delivery, DeliveryStatus
from tests.alerts.conftest import ZERO_FEE_927, make_endpoint, make_subscription, record

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TOTAL_TIMEOUT_S = 2


@pytest.mark.alone  # times itself
def test_hanging_receiver_is_timed_out_and_retried(
    alice,
    whales,
    receiver,
    allow_loopback,
    worker_factory,
    tmp_path,
):
    endpoint = make_endpoint(alice, receiver.url)
    make_subscription(alice, endpoints=[endpoint], email=False)
    receiver.script = ["hang"]  # the first request is held without an answer
    # The retry waits in the database; beat's alert sweep (every second here) queues it.
    worker_factory(
        "faults-hang",
        beat_schedule=tmp_path / "beat-schedule",
        WHALE_OUTBOUND_TOTAL_TIMEOUT=str(TOTAL_TIMEOUT_S),
        WHALE_ALERT_SWEEP_SECONDS="1",
    )

    event = record("seen", whales[ZERO_FEE_927])  # commits: fan-out queues the send
    try:
        first, second = receiver.wait_for(2, timeout=30)
        deadline = time.monotonic() + 15
        delivery = Delivery.objects.get()
        while delivery.status != DeliveryStatus.DELIVERED and time.monotonic() < deadline:
            time.sleep(0.1)
            delivery.refresh_from_db()
    finally:
        receiver.release()
    assert delivery.status == DeliveryStatus.DELIVERED, delivery.last_error
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == str(event.uid)
    assert first.body == second.body
    timed_out, delivered = delivery.attempt_set.order_by("number")
    assert timed_out.outcome == AttemptOutcome.FAILED
    assert timed_out.error == "could not connect"  # the timeout shows in the duration
    assert TOTAL_TIMEOUT_S * 1000 * 0.9 <= timed_out.duration_ms < TOTAL_TIMEOUT_S * 1000 + 2000
    gap = (delivered.started_at - timed_out.started_at).total_seconds()
    # the timeout, then the first retry delay (±10 %)
    assert (
        TOTAL_TIMEOUT_S + RETRY_DELAYS[0] * 0.9 - 0.5
        <= gap
        <= TOTAL_TIMEOUT_S + RETRY_DELAYS[0] * 1.1 + 3
    )
    assert delivered.outcome == AttemptOutcome.DELIVERED
    assert list(receiver.processed) == [str(event.uid)]
    assert len(receiver.requests) == 2
