"""Matching, fan-out idempotency, the hourly limit with its digest, quiet hours, the sweeper."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.delivery import send_delivery
from alerts.fanout import fan_out
from alerts.models import (
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    EventFanOut,
    Subscription,
)
from alerts.sweeper import sweep
from dashboard.models import Profile
from tests.alerts.conftest import (
    CONSOLIDATION_103,
    ZERO_FEE_133,
    ZERO_FEE_927,
    label_as_inflow,
    make_endpoint,
    make_subscription,
    record,
)

pytestmark = pytest.mark.django_db


def matched(event) -> set[str]:
    return set(Subscription.objects.filter(deliveries__event=event).values_list("name", flat=True))


def test_filters_pick_the_right_subscriptions(alice, whales):
    label_as_inflow(whales[ZERO_FEE_927])
    filters = {
        "any": {},
        "over 500": {"min_btc": 500},
        "over 1000": {"min_btc": 1000},
        "up to 500": {"max_sats": 500 * 10**8},
        "inflows": {"flows": ["exchange_inflow"]},
        "outflows": {"flows": ["exchange_outflow", "inter_exchange"]},
        "binance": {"entities": ["binance"]},  # any case
        "kraken": {"entities": ["Kraken"]},
        "urgent only": {"min_urgency": 0.8},
        "not seen": {"notify_seen": False},
        "paused": {"active": False},
    }
    for number, (name, fields) in enumerate(filters.items()):
        endpoint = make_endpoint(alice, f"https://hooks.example.org/{number}")
        make_subscription(alice, name=name, endpoints=[endpoint], email=False, **fields)

    event = record("seen", whales[ZERO_FEE_927])  # 927 BTC, zero fee: urgency 0
    fan_out(event.pk)

    assert matched(event) == {"any", "over 500", "inflows", "binance"}


def test_one_email_per_person(alice, whales):
    make_subscription(alice, name="one")
    make_subscription(alice, name="two")
    event = record("seen", whales[ZERO_FEE_927])
    assert fan_out(event.pk) == 1
    assert Delivery.objects.get().subscription.name == "one"


def test_lifecycle_kinds(alice, whales):
    make_subscription(alice, name="confirmations only", notify_seen=False, notify_dropped=False)
    tx = whales[ZERO_FEE_133]
    seen = record("seen", tx)
    confirmed = record("confirmed", tx, block={"height": 277647, "hash": "11" * 32})
    assert fan_out(seen.pk) == 0
    assert fan_out(confirmed.pk) == 1


def test_fan_out_is_idempotent_and_one_indexed_query_matches(alice, bob, whales):
    endpoint = make_endpoint(alice, "https://hooks.example.org/a")
    make_subscription(alice, endpoints=[endpoint])
    make_subscription(bob, name="bob")
    event = record("seen", whales[CONSOLIDATION_103])
    with CaptureQueriesContext(connection) as queries:
        assert fan_out(event.pk) == 3
    matching = [q["sql"] for q in queries if 'FROM "alerts_subscription"' in q["sql"]]
    assert len(matching) == 1  # the match itself: one query
    # A fixed budget, whatever the number of subscribers: the event, the claim (2 savepoints, the
    # payload's prediction, the insert), the match, the watch targets and the subscribers' private
    # labels (issue 21), their webhooks, their chats (issue 17), the deliveries' insert and ids,
    # the marker's count, the release.
    assert len(queries) <= 15
    assert fan_out(event.pk) == 0
    assert Delivery.objects.count() == 3
    assert EventFanOut.objects.get(event=event).deliveries == 3


def test_one_webhook_per_endpoint_even_if_two_subscriptions_match(alice, whales):
    endpoint = make_endpoint(alice, "https://hooks.example.org/a")
    make_subscription(alice, name="one", endpoints=[endpoint], email=False)
    make_subscription(alice, name="two", endpoints=[endpoint], email=False)
    fan_out(record("seen", whales[CONSOLIDATION_103]).pk)
    assert Delivery.objects.filter(endpoint=endpoint).count() == 1


def test_disabled_endpoint_gets_nothing(alice, whales):
    endpoint = make_endpoint(alice, "https://hooks.example.org/a", active=False)
    make_subscription(alice, endpoints=[endpoint], email=False)
    assert fan_out(record("seen", whales[CONSOLIDATION_103]).pk) == 0


def test_users_are_isolated(alice, bob, whales):
    bob_endpoint = make_endpoint(bob, "https://bob.example.org/hook")
    make_subscription(alice, name="alice", email=True)
    make_subscription(bob, name="bob", endpoints=[bob_endpoint], email=False)
    fan_out(record("seen", whales[CONSOLIDATION_103]).pk)
    alice_rows = Delivery.objects.filter(owner=alice)
    assert [(d.channel, d.subscription.name) for d in alice_rows] == [("email", "alice")]
    assert Delivery.objects.get(owner=bob).endpoint == bob_endpoint


def test_hourly_limit_holds_the_rest_for_one_digest(alice, whales, receiver, allow_loopback):
    endpoint = make_endpoint(alice, receiver.url)
    subscription = make_subscription(alice, endpoints=[endpoint], email=False, max_per_hour=2)
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    txids = [ZERO_FEE_927, ZERO_FEE_133, CONSOLIDATION_103]
    with time_machine.travel(start, tick=False) as traveller:
        for minute, txid in enumerate(txids):
            traveller.move_to(start + timedelta(minutes=minute))
            fan_out(record("seen", whales[txid]).pk)
        fan_out(
            record("confirmed", whales[ZERO_FEE_927], block={"height": 1, "hash": "ab" * 32}).pk
        )
        statuses = list(
            Delivery.objects.order_by("created_at", "id").values_list("status", flat=True)
        )
        assert statuses == ["pending", "pending", "held", "held"]
        held = Delivery.objects.filter(status=DeliveryStatus.HELD)
        assert {d.next_attempt_at for d in held} == {start + timedelta(hours=1)}
        for delivery in Delivery.objects.filter(status=DeliveryStatus.PENDING):
            send_delivery(delivery.pk)

        traveller.move_to(start + timedelta(minutes=59))
        assert sweep().digests == 0
        traveller.move_to(start + timedelta(hours=1, seconds=1))
        result = sweep()
        assert (result.released, result.digests) == (2, 1)
        digest = Delivery.objects.get(kind=DeliveryKind.DIGEST)
        assert digest.subscription == subscription and digest.endpoint == endpoint
        assert set(digest.digested.values_list("status", flat=True)) == {"digested"}
        send_delivery(digest.pk)

    third = receiver.wait_for(3)[-1]
    body = __import__("json").loads(third.body)
    assert body["type"] == "whale.digest"
    assert body["data"]["count"] == 2 and body["data"]["reason"] == "hourly limit"
    assert [e["kind"] for e in body["data"]["events"]] == ["seen", "confirmed"]
    assert third.headers["webhook-id"] == digest.message_id


def test_quiet_hours_in_the_users_time_zone(alice, whales, smtp_server):
    Profile.objects.filter(user=alice).update(time_zone="Europe/Berlin")
    make_subscription(alice, quiet_start=time(22, 0), quiet_end=time(7, 0))
    # 23:30 in Berlin (UTC+1 in winter) is 22:30 UTC
    night = datetime(2026, 1, 15, 22, 30, tzinfo=UTC)
    with time_machine.travel(night, tick=False) as traveller:
        fan_out(record("seen", whales[ZERO_FEE_927]).pk)
        traveller.move_to(night + timedelta(hours=2))
        fan_out(record("seen", whales[ZERO_FEE_133]).pk)
        held = Delivery.objects.filter(status=DeliveryStatus.HELD)
        assert held.count() == 2
        # 07:00 Berlin = 06:00 UTC the next morning
        assert {d.next_attempt_at for d in held} == {datetime(2026, 1, 16, 6, 0, tzinfo=UTC)}
        traveller.move_to(datetime(2026, 1, 16, 5, 59, tzinfo=UTC))
        assert sweep().released == 0
        traveller.move_to(datetime(2026, 1, 16, 6, 0, 30, tzinfo=UTC))
        assert sweep().digests == 1
        send_delivery(Delivery.objects.get(kind=DeliveryKind.DIGEST).pk)
        # after quiet hours alerts go straight out
        fan_out(record("seen", whales[CONSOLIDATION_103]).pk)
        assert Delivery.objects.filter(status=DeliveryStatus.PENDING).count() == 1
    [digest] = smtp_server.wait_for(1)
    assert (
        str(digest["Subject"]).strip() == "Whale Watch digest: 2 whale alerts for “alice's whales”"
    )
    text = digest.get_body(("plain",)).get_content()
    assert "quiet hours" in text and ZERO_FEE_927 in text and ZERO_FEE_133 in text


def test_a_single_held_alert_goes_as_itself(alice, whales):
    make_subscription(alice, quiet_start=time(0, 0), quiet_end=time(6, 0))
    with time_machine.travel(datetime(2026, 6, 1, 3, 0, tzinfo=UTC), tick=False) as traveller:
        fan_out(record("seen", whales[ZERO_FEE_927]).pk)
        traveller.move_to(datetime(2026, 6, 1, 6, 0, 1, tzinfo=UTC))
        assert (sweep().released, Delivery.objects.filter(kind="digest").count()) == (1, 0)
    assert Delivery.objects.get().status == DeliveryStatus.PENDING


def test_quiet_window_across_a_dst_change():
    subscription = Subscription(quiet_start=time(1, 0), quiet_end=time(3, 30))
    subscription.time_zone = lambda: __import__("zoneinfo").ZoneInfo("Europe/Berlin")
    # 2026-03-29 02:00-03:00 does not exist in Berlin; 01:30 local is 00:30 UTC
    until = subscription.quiet_until(datetime(2026, 3, 29, 0, 30, tzinfo=UTC))
    assert until == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST
    assert subscription.quiet_until(datetime(2026, 3, 29, 12, 0, tzinfo=UTC)) is None


def test_sweeper_catches_up_a_lost_fan_out(alice, whales):
    make_subscription(alice)
    event = record("seen", whales[ZERO_FEE_927])  # on-commit never runs in this test
    assert sweep().fanned_out == 0  # too fresh: the normal path may still be running
    with time_machine.travel(event.created_at + timedelta(minutes=2)):
        assert sweep().fanned_out == 1
    assert Delivery.objects.filter(event=event).count() == 1
    with time_machine.travel(event.created_at + timedelta(hours=2)):
        assert sweep().fanned_out == 0


def test_sweeper_requeues_due_retries_only(alice, whales, django_capture_on_commit_callbacks):
    make_subscription(alice)
    fan_out(record("seen", whales[ZERO_FEE_927]).pk)
    delivery = Delivery.objects.get()
    later = delivery.created_at + timedelta(hours=2)
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.FAILED, next_attempt_at=later, enqueued_at=None
    )
    with time_machine.travel(later - timedelta(seconds=1)):
        assert sweep().requeued == 0
    with time_machine.travel(later + timedelta(seconds=1)):
        with django_capture_on_commit_callbacks() as callbacks:
            assert sweep().requeued == 1
        assert len(callbacks) == 1
        assert sweep().requeued == 0  # queued a moment ago; not again


def test_a_send_queued_and_never_taken_is_queued_again_only_when_the_queue_is_empty(
    alice, whales, django_capture_on_commit_callbacks
):
    make_subscription(alice)
    fan_out(record("seen", whales[ZERO_FEE_927]).pk)
    delivery = Delivery.objects.get()
    assert delivery.enqueued_at is not None  # handed to the broker, never taken (a dead worker)
    later = delivery.enqueued_at + timedelta(seconds=20)  # past WHALE_DELIVERY_STRANDED_SECONDS
    with time_machine.travel(later):
        # a backlog: it is most likely still queued; queueing it again would feed the backlog
        assert sweep(queue_waiting=40).requeued == 0
        with django_capture_on_commit_callbacks() as callbacks:
            assert sweep(queue_waiting=0).requeued == 1
        assert len(callbacks) == 1
