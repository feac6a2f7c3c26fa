"""Fiat minimum and maximum on watchlist entries: the entry's own amount, valued at the price the
transaction was recorded with, in the entry's currency; no price never matches a fiat bound."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from alerts.fanout import fan_out
from alerts.models import Delivery
from alerts.watchlists import CsvImportError, WatchHit, WatchlistEntry, export_csv, import_csv
from tests.watchlist.conftest import SMALL_RECIPIENT, SMALL_SENDER, record, watch

pytestmark = pytest.mark.django_db

# Fresh at the recording's observed_at (1,700,000,000). 0.04621816 BTC paid to SMALL_RECIPIENT
# is worth 3,229.73 USD and 2,996.00 EUR at these prices.
PRICES = {"USD": ["69880", 1_700_000_000.0 - 60], "EUR": ["64823", 1_700_000_000.0 - 60]}


def hits_of(owner) -> list[tuple[str, str, int]]:
    return list(
        WatchHit.objects.filter(entry__owner=owner)
        .order_by("id")
        .values_list("entry__note", "event__kind", "amount_sats")
    )


def test_fiat_bounds_hold_the_entrys_own_amount_in_its_currency(alice, bob, small_tx):
    watch(alice, SMALL_RECIPIENT, note="usd in range", min_fiat="3000", max_fiat="3229.73")
    watch(bob, SMALL_RECIPIENT, note="eur too high", min_fiat="3000", fiat_currency="eur")
    event = record("seen", small_tx, prices=PRICES)
    assert fan_out(event.pk) == 1
    assert hits_of(alice) == [("usd in range", "seen", 4_621_816)]
    assert hits_of(bob) == []
    [sent] = Delivery.objects.all()
    assert sent.owner == alice and sent.body["data"]["watch"]["entries"][0]["note"] == (
        "usd in range"
    )


def test_fiat_maximum_excludes_a_larger_amount(alice, small_tx):
    watch(alice, SMALL_RECIPIENT, max_fiat="3229.72")
    assert fan_out(record("seen", small_tx, prices=PRICES).pk) == 0
    assert WatchHit.objects.count() == 0 and Delivery.objects.count() == 0


def test_outgoing_fiat_bound_uses_the_spent_amount(alice, small_tx):
    # 0.54641816 BTC spent by SMALL_SENDER: 38,183.70 USD
    watch(alice, SMALL_SENDER, direction="outgoing", min_fiat="38183.70", max_fiat="38183.70")
    assert fan_out(record("seen", small_tx, prices=PRICES).pk) == 1
    assert hits_of(alice) == [("", "seen", 54_641_816)]


def test_no_price_never_matches_a_fiat_bound(alice, bob, small_tx):
    watch(alice, SMALL_RECIPIENT, note="fiat", max_fiat="1000000")
    watch(bob, SMALL_RECIPIENT, note="btc only")
    event = record("seen", small_tx)  # recorded without any price
    assert fan_out(event.pk) == 1
    assert hits_of(alice) == [] and hits_of(bob) == [("btc only", "seen", 4_621_816)]


def test_currency_without_a_price_never_matches(alice, small_tx):
    watch(alice, SMALL_RECIPIENT, min_fiat="1", fiat_currency="CHF")
    assert fan_out(record("seen", small_tx, prices=PRICES).pk) == 0


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"min_fiat": "500", "max_fiat": "400"}, "max_fiat", "at least the minimum"),
        ({"min_fiat": "0"}, "min_fiat", "above 0"),
        ({"max_fiat": "ten"}, "max_fiat", "not an amount of money"),
        ({"min_fiat": "1.001"}, "min_fiat", "two decimals"),
        ({"min_fiat": "10", "fiat_currency": "US$"}, "fiat_currency", "three letters"),
    ],
)
def test_bad_fiat_bounds_name_the_field_and_save_nothing(alice, fields, field, words):
    with pytest.raises(ValidationError) as raised:
        watch(alice, SMALL_RECIPIENT, **fields)
    assert words in " ".join(raised.value.message_dict[field])
    assert not WatchlistEntry.objects.exists()


def test_api_create_read_update_fiat_bounds(alice):
    api = APIClient()
    api.force_authenticate(alice)
    created = api.post(
        "/api/v1/watchlist/",
        {"kind": "address", "value": SMALL_RECIPIENT, "min_fiat": "1000", "fiat_currency": "eur"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["min_fiat"], body["max_fiat"], body["fiat_currency"]) == ("1000.00", None, "EUR")
    refused = api.patch(f"/api/v1/watchlist/{body['id']}/", {"max_fiat": "999.99"}, format="json")
    assert refused.status_code == 400
    assert "at least the minimum" in str(refused.json()["error"]["fields"]["max_fiat"])
    updated = api.patch(f"/api/v1/watchlist/{body['id']}/", {"max_fiat": "2000"}, format="json")
    assert updated.status_code == 200 and updated.json()["max_fiat"] == "2000.00"
    entry = WatchlistEntry.objects.get()
    assert (entry.min_fiat, entry.max_fiat, entry.fiat_currency) == (
        Decimal("1000.00"),
        Decimal("2000.00"),
        "EUR",
    )


def test_page_form_saves_fiat_bounds(client, alice):
    client.force_login(alice)
    response = client.post(
        "/alerts/watching/add/",
        {
            "kind": "address",
            "value": SMALL_RECIPIENT,
            "direction": "either",
            "min_fiat": "10",
            "max_fiat": "20.5",
            "fiat_currency": "GBP",
        },
    )
    assert response.status_code == 302
    entry = WatchlistEntry.objects.get(owner=alice)
    assert (entry.min_fiat, entry.max_fiat, entry.fiat_currency) == (
        Decimal("10.00"),
        Decimal("20.50"),
        "GBP",
    )
    assert "10.00–20.50 GBP" in client.get("/alerts/watching/").content.decode()


def test_csv_fiat_columns_round_trip_and_bad_line_is_named(alice):
    text = (
        f"kind,value,min_fiat,max_fiat,fiat_currency\naddress,{SMALL_RECIPIENT},100,250.5,eur\n"
    ).encode()
    [entry] = import_csv(alice, text)
    assert (entry.min_fiat, entry.max_fiat, entry.fiat_currency) == (
        Decimal("100.00"),
        Decimal("250.50"),
        "EUR",
    )
    assert export_csv(alice).splitlines()[1] == (
        f"address,{SMALL_RECIPIENT},either,,,,100.00,250.50,EUR"
    )
    bad = f"kind,value,min_fiat,max_fiat\naddress,{SMALL_SENDER},300,200\n".encode()
    with pytest.raises(CsvImportError) as raised:
        import_csv(alice, bad)
    assert raised.value.errors == ["line 2, max_fiat: The maximum must be at least the minimum."]
    assert WatchlistEntry.objects.count() == 1
