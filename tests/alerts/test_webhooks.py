"""Webhook delivery end to end: a real receiver verifies every signature with standardwebhooks."""

from __future__ import annotations

import json
import time

import pytest
from standardwebhooks.webhooks import Webhook

from alerts.delivery import RETRY_DELAYS, send_delivery
from alerts.models import (
    AttemptOutcome,
    Delivery,
    DeliveryStatus,
    WebhookEndpoint,
)
from alerts.payloads import body_bytes
from tests.alerts.conftest import (
    CONSOLIDATION_103,
    ZERO_FEE_927,
    label_as_inflow,
    make_endpoint,
    make_subscription,
    record,
)


def verify(endpoint: WebhookEndpoint, received) -> dict:
    return Webhook(endpoint.secret).verify(received.body, received.headers)


@pytest.mark.django_db
def test_signed_webhook_carries_the_exact_body(
    alice, whales, receiver, allow_loopback, django_capture_on_commit_callbacks
):
    endpoint = make_endpoint(alice, receiver.url)
    subscription = make_subscription(alice, endpoints=[endpoint], email=False)
    label_as_inflow(whales[ZERO_FEE_927])
    with django_capture_on_commit_callbacks() as callbacks:
        event = record("seen", whales[ZERO_FEE_927])
    # run detection's on-commit (push + fan_out) but not the Celery publish it queues
    for callback in callbacks:
        callback()
    delivery = Delivery.objects.get()
    assert delivery.message_id == str(event.uid)

    send_delivery(delivery.pk)

    [received] = receiver.wait_for(1)
    payload = verify(endpoint, received)
    assert received.headers["webhook-id"] == str(event.uid)
    assert received.headers["content-type"] == "application/json"
    assert received.headers["user-agent"].startswith("WhaleWatch-Webhooks/")
    assert received.body == body_bytes(delivery.body).encode()
    assert payload["type"] == "whale.seen"
    assert payload["timestamp"] == event.occurred_at.isoformat()
    data = payload["data"]
    assert data["id"] == str(event.uid)
    assert data["whale"]["txid"] == ZERO_FEE_927
    assert data["whale"]["value_btc"] == "927.00000000"
    assert data["whale"]["value_sat"] == 92_700_000_000
    assert data["whale"]["flow"] == "exchange_inflow"
    assert data["whale"]["to_entity"] == "Binance"
    assert data["subscription"] == {"id": str(subscription.public_id), "name": subscription.name}

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.attempts == 1 and delivery.last_status_code == 200
    [attempt] = delivery.attempt_set.all()
    assert attempt.outcome == AttemptOutcome.DELIVERED
    assert attempt.duration_ms is not None and attempt.response_excerpt == "ok"
    endpoint.refresh_from_db()
    assert endpoint.last_success_at is not None and endpoint.consecutive_failures == 0


def _one_delivery(alice, whales, url, **subscription_fields):
    endpoint = make_endpoint(alice, url)
    make_subscription(alice, endpoints=[endpoint], email=False, **subscription_fields)
    from alerts.fanout import fan_out

    event = record("seen", whales[CONSOLIDATION_103])
    fan_out(event.pk)
    return Delivery.objects.get(endpoint=endpoint), endpoint


@pytest.mark.django_db
def test_410_disables_the_endpoint_and_tells_the_owner(
    alice, whales, receiver, allow_loopback, smtp_server, django_capture_on_commit_callbacks
):
    receiver.script = [(410, {}, b"gone")]
    delivery, endpoint = _one_delivery(alice, whales, receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        send_delivery(delivery.pk)

    delivery.refresh_from_db()
    endpoint.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD and delivery.last_status_code == 410
    assert not endpoint.active
    assert "410" in endpoint.disabled_reason
    [notice] = smtp_server.wait_for(1)
    assert notice["To"] == alice.email
    assert "disabled" in notice["Subject"]
    assert receiver.url in notice.get_payload(decode=True).decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "retried"),
    [(400, False), (401, False), (404, False), (408, True), (425, True), (429, True)]
    + [(500, True), (502, True), (503, True), (301, False)],
)
def test_which_answers_are_retried(alice, whales, receiver, allow_loopback, status, retried):
    receiver.script = [(status, {"Location": "https://example.org/"}, b"no")]
    delivery, _ = _one_delivery(alice, whales, receiver.url)
    send_delivery(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.last_status_code == status
    assert delivery.status == (DeliveryStatus.FAILED if retried else DeliveryStatus.DEAD)
    assert (delivery.next_attempt_at is not None) == retried
    assert len(receiver.requests) == 1  # a 301 is never followed
    [attempt] = delivery.attempt_set.all()
    assert (attempt.status_code, attempt.response_excerpt) == (status, "no")


@pytest.mark.django_db
def test_retry_after_is_honoured(alice, whales, receiver, allow_loopback):
    receiver.script = [(429, {"Retry-After": "120"}, b"slow down")]
    delivery, _ = _one_delivery(alice, whales, receiver.url)
    send_delivery(delivery.pk)
    delivery.refresh_from_db()
    [attempt] = delivery.attempt_set.all()
    wait = (delivery.next_attempt_at - attempt.started_at).total_seconds()
    assert 119 <= wait <= 125
    assert delivery.enqueued_at is None  # no Celery countdown: the sweeper queues it when due


@pytest.mark.alone  # times itself
@pytest.mark.django_db
def test_hanging_receiver_hits_the_total_timeout(alice, whales, receiver, allow_loopback):
    allow_loopback.WHALE_OUTBOUND_TOTAL_TIMEOUT = 1.0
    receiver.script = ["hang"]
    delivery, endpoint = _one_delivery(alice, whales, receiver.url)
    send_delivery(delivery.pk)
    receiver.release()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error == "could not connect"  # the timeout shows in the duration
    assert 900 <= delivery.last_duration_ms < 3000
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 1 and endpoint.failing_since is not None


@pytest.mark.django_db
def test_schedule_runs_out_then_the_delivery_is_dead(alice, whales, receiver, allow_loopback):
    import time_machine
    from django.utils import timezone

    receiver.default = (500, {}, b"still down")
    delivery, endpoint = _one_delivery(alice, whales, receiver.url)
    waits = []
    with time_machine.travel(timezone.now(), tick=True) as traveller:
        for _ in range(len(RETRY_DELAYS) + 1):
            send_delivery(delivery.pk)
            delivery.refresh_from_db()
            if delivery.status == DeliveryStatus.DEAD:
                break
            # no wait is a Celery countdown: only the database (and the sweeper) know them
            attempt = delivery.attempt_set.last()
            waits.append((delivery.next_attempt_at - attempt.started_at).total_seconds())
            assert delivery.enqueued_at is None
            traveller.move_to(delivery.next_attempt_at)
    assert delivery.status == DeliveryStatus.DEAD
    assert delivery.attempts == len(RETRY_DELAYS) + 1
    for wait, planned in zip(waits, RETRY_DELAYS, strict=True):
        assert planned * 0.9 - 1 <= wait <= planned * 1.1 + 1
    # the run of failures passed 24 h, so the endpoint is off too
    endpoint.refresh_from_db()
    assert not endpoint.active and "24 hours" in endpoint.disabled_reason


@pytest.mark.django_db
def test_rotated_secret_signs_with_old_and_new(alice, whales, receiver, allow_loopback):
    delivery, endpoint = _one_delivery(alice, whales, receiver.url)
    old_secret = endpoint.secret
    endpoint.rotate_secret()
    assert endpoint.secret != old_secret and endpoint.secret.startswith("whsec_")
    send_delivery(delivery.pk)
    [received] = receiver.wait_for(1)
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    Webhook(old_secret).verify(received.body, received.headers)
    Webhook(endpoint.secret).verify(received.body, received.headers)


@pytest.mark.django_db
def test_test_event_is_sent_once_and_signed(alice, receiver, allow_loopback):
    from alerts.delivery import send_test_now

    endpoint = make_endpoint(alice, receiver.url)
    receiver.script = [(503, {}, b"")]
    failed = send_test_now(endpoint)
    assert failed.status == DeliveryStatus.DEAD  # a test gets one try and an answer
    delivered = send_test_now(endpoint)
    assert delivered.status == DeliveryStatus.DELIVERED
    received = receiver.wait_for(2)[-1]
    assert verify(endpoint, received)["type"] == "whale.test"
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0  # tests do not count against the endpoint


@pytest.mark.django_db
def test_redeliver_sends_the_same_message_again(
    alice, whales, receiver, allow_loopback, django_capture_on_commit_callbacks
):
    from alerts.delivery import redeliver

    delivery, endpoint = _one_delivery(alice, whales, receiver.url)
    send_delivery(delivery.pk)
    delivery.refresh_from_db()
    with django_capture_on_commit_callbacks() as callbacks:
        assert redeliver(delivery)
    assert len(callbacks) == 1  # one task queued
    assert not redeliver(delivery)  # already waiting
    send_delivery(delivery.pk)
    first, second = receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery.message_id
    assert json.loads(first.body) == json.loads(second.body)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 2


@pytest.mark.django_db
def test_secrets_never_reach_the_logs(alice, whales, receiver, allow_loopback, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    receiver.script = [(500, {}, b"boom")]
    delivery, endpoint = _one_delivery(alice, whales, receiver.url)
    send_delivery(delivery.pk)
    endpoint.rotate_secret()
    endpoint.refresh_from_db()
    assert endpoint.secret not in repr(endpoint) and endpoint.secret not in str(endpoint)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "delivery" in logged
    for secret in (endpoint.secret, endpoint.previous_secret):
        assert secret not in logged
        assert secret.removeprefix("whsec_") not in logged


@pytest.mark.django_db(transaction=True)
def test_an_answer_is_recorded_while_the_batch_still_waits_for_a_slow_receiver(
    alice, bob, whales, receiver, allow_loopback
):
    """A 2xx is committed as soon as it is read, not when the slowest send of its batch ends:
    a worker killed meanwhile would otherwise send the answered delivery again."""
    import threading

    from django.db import connection

    from alerts.delivery import send_deliveries
    from alerts.fanout import fan_out

    for owner in (alice, bob):
        endpoint = make_endpoint(owner, receiver.url)
        make_subscription(owner, endpoints=[endpoint], email=False)
    fan_out(record("seen", whales[CONSOLIDATION_103]).pk)
    ids = list(Delivery.objects.values_list("pk", flat=True))
    receiver.script = ["hang", (200, {}, b"ok")]  # whichever request comes first hangs

    def send_batch():
        try:
            send_deliveries(ids)
        finally:
            connection.close()  # this thread's own connection

    batch = threading.Thread(target=send_batch)
    batch.start()
    receiver.wait_for(2)
    deadline = time.monotonic() + 10
    while not Delivery.objects.filter(status=DeliveryStatus.DELIVERED).exists():
        assert time.monotonic() < deadline, "the answered delivery was not recorded in time"
        time.sleep(0.05)  # polling the database: its commit is the event awaited
    assert batch.is_alive()  # the other send still hangs
    assert Delivery.objects.filter(status=DeliveryStatus.SENDING).count() == 1
    receiver.release()
    batch.join(20)
    statuses = sorted(Delivery.objects.values_list("status", flat=True))
    assert statuses == sorted([DeliveryStatus.DELIVERED, DeliveryStatus.FAILED])
