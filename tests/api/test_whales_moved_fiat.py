"""Moved value, its confidence and fiat values in the whale API: fields, filters, CSV."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from detection.recording import record_event
from tests.api.conftest import SATS, error_of, make_whale
from tests.api.test_csv import read_csv
from tests.records.helpers import event, load_esplora

pytestmark = pytest.mark.django_db

FIAT = {
    "prices": {"EUR": "64823", "USD": "69880"},
    "price_time": 1_700_000_000.0,
    "value": {"EUR": "60090921.00", "USD": "64778760.00"},
    "moved": {"EUR": "59442691.00", "USD": "64079960.00"},
}


def make_priced_whale():
    return make_whale(
        btc=927,
        moved=917 * SATS,
        moved_confidence=0.6,
        value_usd=Decimal("64778760.00"),
        moved_usd=Decimal("64079960.00"),
        price_usd=Decimal("69880"),
        fiat=FIAT,
    )


def test_fields_and_filters(api):
    priced = make_priced_whale()
    unpriced = make_whale(btc=500, moved=2 * SATS, moved_confidence=0.95)

    body = api.get(f"/api/v1/whales/{priced.txid}/").json()
    assert body["moved_btc"] == "917.00000000" and body["moved_sat"] == 917 * SATS
    assert body["moved_confidence"] == 0.6
    assert body["value_usd"] == "64778760.00" and body["moved_usd"] == "64079960.00"
    assert body["fiat"] == {**FIAT, "price_time": "2023-11-14T22:13:20Z"}

    rows = {r["txid"]: r for r in api.get("/api/v1/whales/").json()["results"]}
    assert rows[unpriced.txid]["value_usd"] is None and rows[unpriced.txid]["fiat"] is None
    assert rows[unpriced.txid]["moved_btc"] == "2.00000000"

    def txids(query):
        response = api.get(f"/api/v1/whales/?{query}")
        assert response.status_code == 200, response.content
        return [r["txid"] for r in response.json()["results"]]

    assert txids("min_usd=50000000") == [priced.txid]
    assert txids("min_usd=64778760.00") == [priced.txid]
    assert txids("min_usd=64778760.01") == []
    assert txids("min_moved_btc=100") == [priced.txid]
    assert set(txids("min_moved_btc=2")) == {priced.txid, unpriced.txid}
    assert error_of(api.get("/api/v1/whales/?min_usd=lots"))["code"]
    assert error_of(api.get("/api/v1/whales/?min_moved_btc=-1"))["code"]


def test_csv_has_moved_and_fiat(api):
    make_priced_whale()
    [row] = read_csv(api.get("/api/v1/whales/?format=csv"))
    assert row["moved_btc"] == "917.00000000" and row["moved_sat"] == str(917 * SATS)
    assert row["moved_confidence"] == "0.6"
    assert row["value_usd"] == "64778760.00" and row["moved_usd"] == "64079960.00"


def test_stats_volumes_in_usd(api):
    whales = load_esplora("whales_block_277647.esplora_txs.json")
    now = time.time()
    prices = {"USD": ["69880", now]}
    for txid in (
        "5143ba5524d21b646de5cd5a1ab6ee7b7823a59c87a347d3b5339e9f977e7dcd",  # $64,778,760.00
        "712db987272743dd6e02bdd00fd8a0718bbfd04d13495a97eb70cdc42c010b1e",  # moved $48,426.84
    ):
        record_event(event("seen", whales[txid], at=now, prices=prices))
    record_event(  # no price: counted in BTC, not in USD
        event("seen", whales["d385205568e5420bc73b190ede001678730d42744d0716d2c5c2b6467cf73082"])
        | {"observed_at": now}
    )
    totals = api.get("/api/v1/stats/?days=1").json()["totals"]
    assert totals["count"] == 3 and totals["priced_count"] == 2
    # 927 + 133.30798472 BTC at 69,880: 64,778,760.00 + 9,315,561.97
    assert totals["value_usd"] == "74094321.97"
    # moved: 927 + 0.693 BTC: 64,778,760.00 + 48,426.84
    assert totals["moved_usd"] == "64827186.84"
    assert totals["moved_btc"] == "1027.69300000"  # + 100 BTC moved of the unpriced 103.03
