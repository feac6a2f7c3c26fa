"""`load_demo_history`: a deterministic week that fills the feed, the stats and the flows."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from alerts.models import Delivery, EventFanOut
from detection import demo_history
from detection.models import (
    AddressLabel,
    Block,
    Flow,
    Prediction,
    WhaleEvent,
    WhaleHourlyVolume,
    WhaleStatus,
    WhaleTransaction,
)

pytestmark = pytest.mark.django_db


@pytest.mark.alone  # times itself
def test_a_week_of_history_in_every_flow_class():
    started = time.monotonic()
    call_command("load_demo_history")
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"took {elapsed:.1f} s"

    whales = WhaleTransaction.objects.filter(source="demo history")
    assert whales.count() >= 200
    assert set(whales.values_list("flow", flat=True)) == set(Flow.values)
    statuses = set(whales.values_list("status", flat=True))
    assert {WhaleStatus.CONFIRMED, WhaleStatus.PENDING, WhaleStatus.REPLACED} <= statuses
    assert WhaleStatus.DROPPED in statuses
    assert WhaleEvent.objects.filter(kind="reorged").count() == 1
    assert whales.filter(seen_in_mempool=False, status=WhaleStatus.CONFIRMED).count() >= 5
    assert Block.objects.filter(orphaned=True).count() == 1

    now = timezone.now()
    first = whales.order_by("first_seen_at").first().first_seen_at
    assert now - timedelta(days=7, minutes=5) <= first <= now - timedelta(days=6)
    tip = Block.objects.filter(orphaned=False).order_by("-height").first()
    # The tip is the parent of the demo recording's first block: the replay continues it.
    assert (tip.height, tip.hash) == demo_history.replay_parent()
    assert tip.height == 900_000
    assert abs((now - tip.time).total_seconds()) < 15 * 60

    scored = Prediction.objects.filter(whale__in=whales, hit__isnull=False)
    assert scored.count() >= 150 and scored.filter(hit=True).exists()
    assert scored.filter(hit=False).exists()
    resolved_hours = {p.resolved_at.replace(minute=0, second=0) for p in scored}
    assert len(resolved_hours) > 24  # resolved over the week, not all "now"
    assert WhaleHourlyVolume.objects.values("hour").distinct().count() > 100
    entities = set(AddressLabel.objects.filter(source="demo").values_list("entity", flat=True))
    assert {"Demo Exchange A", "Demo Exchange B", "Demo Fund"} <= entities
    # Every whale has fiat values; the price drifts a few per cent over the week and ends at the
    # live replay's own price (its first conversions frame: USD 70,019), so the two agree.
    assert not whales.filter(value_usd__isnull=True).exists()
    replay_usd = Decimal(demo_history.replay_prices()["USD"])
    latest = whales.order_by("-first_seen_at").first()
    assert abs(latest.price_usd - replay_usd) / replay_usd < Decimal("0.001")
    assert len(set(whales.values_list("price_usd", flat=True))) > 24


def test_loading_twice_gives_the_same_week():
    call_command("load_demo_history", whales=30)
    first = sorted(WhaleTransaction.objects.values_list("txid", "flow", "value", "status"))
    call_command("load_demo_history", whales=30)
    again = sorted(WhaleTransaction.objects.values_list("txid", "flow", "value", "status"))
    assert first == again
    assert WhaleEvent.objects.values("uid").distinct().count() == WhaleEvent.objects.count()


def test_demo_alerts_give_the_demo_user_a_subscription_and_a_webhook(django_user_model, settings):
    settings.WHALE_OUTBOUND_ALLOW_LOOPBACK = True
    call_command("create_demo_user")
    call_command("create_demo_alerts")
    call_command("create_demo_alerts")  # idempotent: reset, not doubled
    user = django_user_model.objects.get(username="demo")
    [subscription] = user.alert_subscriptions.all()
    [endpoint] = subscription.webhooks.all()
    assert endpoint.url == "http://127.0.0.1:8099/hooks/whale-watch"
    assert subscription.min_sats == 100 * 100_000_000 and not subscription.email


def test_history_is_not_news_no_push_no_alert(settings, django_capture_on_commit_callbacks):
    # Even with the demo subscription in place, a week of history alerts nobody and pushes
    # nothing: no callback after the commit, no fan-out row, no delivery.
    settings.WHALE_OUTBOUND_ALLOW_LOOPBACK = True
    call_command("create_demo_user")
    call_command("create_demo_alerts")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        call_command("load_demo_history", whales=20)
    assert WhaleEvent.objects.count() >= 20
    assert callbacks == []
    assert not EventFanOut.objects.exists() and not Delivery.objects.exists()


def test_prepare_demo_does_all_make_demo_needs_in_one_process(django_user_model, settings):
    # make demo's one step before honcho: migrate, static files, pool labels, the login, the
    # week and the example alerts on the receiver's port of this run (a fresh database and the
    # static files: tests/demo/test_demo_browser.py, through make demo itself).
    settings.WHALE_OUTBOUND_ALLOW_LOOPBACK = True
    call_command("prepare_demo", receiver_url="http://127.0.0.1:18099/hooks/whale-watch")
    user = django_user_model.objects.get(username="demo")
    assert user.check_password("whalewatch-demo")
    assert WhaleTransaction.objects.filter(source="demo history").count() >= 200
    assert AddressLabel.objects.filter(source="pools-v2").exists()
    [subscription] = user.alert_subscriptions.all()
    assert [e.url for e in subscription.webhooks.all()] == [
        "http://127.0.0.1:18099/hooks/whale-watch"
    ]
