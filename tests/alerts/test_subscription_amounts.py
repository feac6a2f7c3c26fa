"""Subscriptions choose the amount they match on (moved or total) and may set a fiat minimum."""

from __future__ import annotations

from decimal import Decimal

import pytest

from alerts.fanout import fan_out
from alerts.models import Delivery, Subscription
from tests.alerts.conftest import ZERO_FEE_133, ZERO_FEE_927, make_subscription, record
from tests.alerts.test_api import api  # noqa: F401 - the fixture
from whaleproject.health import INGEST_HEARTBEAT_KEY
from whaleproject.redis_client import get_redis, key

pytestmark = pytest.mark.django_db

PRICES = {"USD": ["69880", 1_700_000_000.0 - 60]}


@pytest.fixture(autouse=True)
def no_heartbeat():
    # The latest price comes from the ingest heartbeat first; these tests use the whale rows.
    get_redis().delete(key(*INGEST_HEARTBEAT_KEY))


def test_moved_basis_ignores_change_and_total_basis_keeps_it(alice, bob, whales):
    # 712db987…: 133.3 BTC of outputs, of which 0.693 BTC moved (132.61 BTC change).
    make_subscription(alice, name="moved", amount_basis="moved")
    make_subscription(bob, name="total", amount_basis="total")
    event = record("seen", whales[ZERO_FEE_133])
    fan_out(event.pk)
    assert list(Delivery.objects.values_list("subscription__name", flat=True)) == ["total"]


def test_fiat_minimum_matches_in_its_currency(alice, bob, whales):
    make_subscription(alice, name="$50M", min_fiat=Decimal("50000000"))
    make_subscription(bob, name="€70M", min_fiat=Decimal("70000000"), fiat_currency="EUR")
    prices = {**PRICES, "EUR": ["64823", 1_700_000_000.0 - 60]}
    event = record("seen", whales[ZERO_FEE_927], prices=prices)  # $64.8M, €60.1M
    fan_out(event.pk)
    assert list(Delivery.objects.values_list("subscription__name", flat=True)) == ["$50M"]


def test_api_fiat_only_subscription_and_floor(api, whales):  # noqa: F811
    # Without any known price a fiat minimum cannot be judged against the floor: accepted.
    response = api.post(
        "/api/v1/subscriptions/",
        {"name": "tiny", "min_fiat": "1000.00", "email": True},
        format="json",
    )
    assert response.status_code == 201, response.json()
    Subscription.objects.all().delete()

    record("seen", whales[ZERO_FEE_927], prices=PRICES)  # now a price is known: 69,880 USD
    response = api.post(
        "/api/v1/subscriptions/",
        {"name": "tiny", "min_fiat": "1000.00", "email": True},
        format="json",
    )
    assert response.status_code == 400
    message = str(response.json()["error"]["fields"]["min_fiat"])
    assert "floor of 100 BTC, worth 6,988,000.00 USD" in message

    response = api.post(
        "/api/v1/subscriptions/",
        {"name": "whales over $50M", "min_fiat": "50000000", "email": True},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["min_btc"] == "100.00000000"  # the floor: a fiat-only subscription
    assert body["min_fiat"] == "50000000.00" and body["fiat_currency"] == "USD"
    assert body["amount_basis"] == "moved"

    response = api.post(
        "/api/v1/subscriptions/",
        {"name": "x", "min_fiat": "50000000", "fiat_currency": "usd", "email": True},
        format="json",
    )
    assert response.status_code == 400
