"""Bursts and backlogs (docs/RELIABILITY.md): a receiver that answers again gets what it missed
within a sweep, and new mempool whales' alerts are taken from the real Redis broker before a
block's confirmations and the sweeper's retries."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts import sweeper
from alerts.delivery import send_delivery
from alerts.models import Delivery, DeliveryStatus, WebhookEndpoint
from detection.management.commands.ingest_mempool import publish_event
from tests.alerts.conftest import (
    CONSOLIDATION_103,
    ZERO_FEE_927,
    make_endpoint,
    make_subscription,
    record,
)
from tests.records.helpers import event, projection
from whaleproject.celery import app

BLOCK = {"height": 277647, "hash": "00" * 32}


@pytest.mark.django_db
def test_a_receiver_that_answers_again_gets_its_backlog_within_a_sweep(
    alice, whales, receiver, allow_loopback, django_capture_on_commit_callbacks
):
    endpoint = make_endpoint(alice, receiver.url)
    make_subscription(alice, endpoints=[endpoint], email=False)
    with django_capture_on_commit_callbacks():  # fan-out only, no Celery publish
        missed_event = record("seen", whales[CONSOLIDATION_103])
        new_event = record("seen", whales[ZERO_FEE_927])
    from alerts.fanout import fan_out

    fan_out(missed_event.pk)
    fan_out(new_event.pk)
    missed = Delivery.objects.get(event=missed_event)
    new = Delivery.objects.get(event=new_event)

    receiver.script = [(500, {}, b"down")]
    send_delivery(missed.pk)
    missed.refresh_from_db()
    assert missed.status == DeliveryStatus.FAILED
    assert missed.next_attempt_at > timezone.now()  # ~5 s away (then 5 min, 30 min, ...)

    send_delivery(new.pk)  # the receiver is back: 200
    new.refresh_from_db()
    missed.refresh_from_db()
    assert new.status == DeliveryStatus.DELIVERED
    assert missed.status == DeliveryStatus.FAILED and missed.attempts == 1
    assert missed.next_attempt_at <= new.delivered_at  # due now, not at its scheduled try
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0 and endpoint.failing_since is None

    with django_capture_on_commit_callbacks() as callbacks:
        queued, stranded = sweeper.requeue_due(timezone.now())
    assert (queued, stranded) == (1, 0)
    assert len(callbacks) == 1
    send_delivery(missed.pk)
    missed.refresh_from_db()
    assert missed.status == DeliveryStatus.DELIVERED and missed.attempts == 2
    tries = [r for r in receiver.requests if r.headers["webhook-id"] == str(missed_event.uid)]
    assert [r.body for r in tries] == [tries[0].body] * 2  # the same message, the same id


@pytest.mark.django_db
def test_a_healthy_receiver_leaves_other_endpoints_waiting_retries_alone(
    alice, bob, whales, receiver, allow_loopback
):
    down = make_endpoint(bob, "https://example.org/hook")
    healthy = make_endpoint(alice, receiver.url)
    make_subscription(alice, endpoints=[healthy], email=False)
    make_subscription(bob, endpoints=[down], email=False)
    from alerts.fanout import fan_out

    fan_out(record("seen", whales[CONSOLIDATION_103]).pk)
    later = timezone.now() + timedelta(seconds=300)
    Delivery.objects.filter(endpoint=down).update(
        status=DeliveryStatus.FAILED, next_attempt_at=later
    )
    send_delivery(Delivery.objects.get(endpoint=healthy).pk)
    assert Delivery.objects.get(endpoint=down).next_attempt_at == later
    assert WebhookEndpoint.objects.get(pk=healthy.pk).consecutive_failures == 0


def broker_order() -> list[tuple[str, object]]:
    """Take every message off the real broker's default queue in the order a worker would
    (kombu's Redis channel reads the priority lists lowest step first): (task, its first argument)."""
    taken = []
    with app.connection_for_read() as connection:
        queue = connection.SimpleQueue("celery", no_ack=True)
        while True:
            try:
                message = queue.get(block=False)
            except queue.Empty:
                break
            [first] = message.decode()[0]
            taken.append((message.headers["task"], first))
        queue.close()
    return taken


@pytest.mark.django_db
def test_new_whales_go_before_a_blocks_confirmations_and_retries(
    alice, whales, receiver, allow_loopback, django_capture_on_commit_callbacks
):
    app.control.purge()
    endpoint = make_endpoint(alice, receiver.url)
    make_subscription(alice, endpoints=[endpoint], email=False)

    # a retry that is due: the sweeper queues it as backlog
    with django_capture_on_commit_callbacks(execute=True):
        retried_event = record("seen", whales[CONSOLIDATION_103])
    app.control.purge()  # its first send; now it waits as a failed try that is due
    retry = Delivery.objects.get(event=retried_event)
    Delivery.objects.filter(pk=retry.pk).update(
        status=DeliveryStatus.FAILED, attempts=1, next_attempt_at=timezone.now(), enqueued_at=None
    )
    with django_capture_on_commit_callbacks(execute=True):
        sweeper.requeue_due(timezone.now())
    # a block confirms a whale, then the mempool brings a new one
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = record("confirmed", whales[CONSOLIDATION_103], seq=1, block=BLOCK)
    with django_capture_on_commit_callbacks(execute=True):
        seen = record("seen", whales[ZERO_FEE_927])
    # and the ingest publishes the next events to record, a confirmation first
    confirmation = event("confirmed", whales[ZERO_FEE_927], seq=1, block=BLOCK)
    sighting = event("seen", whales[ZERO_FEE_927], seq=0, projection=projection(tip=277646))
    publish_event(confirmation)
    publish_event(sighting)

    def send_of(whale_event):
        return ("alerts.send_delivery", Delivery.objects.get(event=whale_event).pk)

    assert broker_order() == [
        send_of(seen),
        ("detection.record_whale_event", sighting),
        ("alerts.send_delivery", retry.pk),
        send_of(confirmed),
        ("detection.record_whale_event", confirmation),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_worker_records_a_new_whale_before_a_blocks_waiting_confirmations(whales):
    """The real worker's consumer (kombu's BRPOP over the priority lists), not a reading of
    the lists: a block's confirmations are queued first, then a new whale is seen; a worker
    started after both records the new whale first."""
    from celery.contrib.testing.worker import start_worker

    from detection.models import WhaleEvent

    app.control.purge()
    first, *others = sorted(whales)
    confirmations = [event("confirmed", whales[txid], block=BLOCK) for txid in others]
    for confirmation in confirmations:
        publish_event(confirmation)
    sighting = event("seen", whales[first], projection=projection(tip=277646))
    publish_event(sighting)

    expected = len(confirmations) + 1
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False):
        deadline = time.monotonic() + 30
        while WhaleEvent.objects.count() < expected:
            assert time.monotonic() < deadline, "the worker did not record every event"
            time.sleep(0.05)  # polling the database: the rows are the event awaited
    order = list(WhaleEvent.objects.order_by("id").values_list("kind", flat=True))
    assert order == ["seen"] + ["confirmed"] * len(confirmations)
