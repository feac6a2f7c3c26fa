"""Fiat prices from `conversions`: validation, freshness and exact cents."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from detection.domain.prices import PriceBook, fiat_of, fiat_values, fresh_prices
from detection.txshape import SATS_PER_BTC

BTC = SATS_PER_BTC
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_real_init_data_conversions():
    # The real init payload of mempool.space (tests/fixtures/mempool/mainnet_mempoolInfo.json).
    with open(FIXTURES / "mempool" / "mainnet_mempoolInfo.json", encoding="utf-8") as handle:
        conversions = json.load(handle)["conversions"]
    book = PriceBook()
    accepted = book.update(conversions, 1000.0)
    codes = {k for k in conversions if k != "time"}
    assert accepted == len(codes) and set(book.quotes) == codes
    assert book.quotes["USD"].price == Decimal(str(conversions["USD"]))
    assert book.rejected_total == 0


def test_bad_prices_are_rejected_counted_and_the_previous_kept():
    book = PriceBook()
    book.update({"time": 1, "USD": 69880, "EUR": 64000}, 10.0)
    accepted = book.update(
        {
            "USD": None,  # missing
            "EUR": -5,  # negative
            "GBP": float("nan"),
            "CAD": "95000",  # a string
            "CHF": True,
        },
        20.0,
    )
    assert accepted == 0
    assert book.rejected == {"missing": 1, "bad_value": 4}
    assert book.quotes["USD"].price == 69880 and book.quotes["USD"].received_at == 10.0
    assert book.quotes["EUR"].price == 64000
    # A 1,000x jump in one message is absurd; a real move is kept.
    assert book.update({"USD": 69_880_000}, 30.0) == 0
    assert book.update({"USD": 69.88}, 30.0) == 0
    assert book.rejected["jump"] == 2
    assert book.update({"USD": 71000.5}, 40.0) == 1
    assert book.quotes["USD"].price == Decimal("71000.5")
    # Not ISO 4217 letters: ignored, not counted as errors.
    assert book.update({"usd": 1, "BTC2": 5, "XAUX": 3}, 50.0) == 0
    assert book.ignored_codes == 3 and set(book.quotes) == {"USD", "EUR"}
    assert book.update("not an object", 60.0) == 0
    assert book.rejected["not_object"] == 1


def test_exact_cents():
    assert fiat_of(927 * BTC, Decimal(69880)) == Decimal("64778760.00")
    assert fiat_of(1, Decimal("69880")) == Decimal("0.00")  # 0.0006988 rounds to 0.00
    # 0.12345678 x 64,123.45 = 7,916.474659...
    assert fiat_of(12_345_678, Decimal("64123.45")) == Decimal("7916.47")


def test_fiat_values_only_from_fresh_prices():
    book = PriceBook()
    book.update({"USD": 69880, "EUR": 60000}, 1000.0)
    book.update({"EUR": 61000}, 4000.0)
    snapshot = book.snapshot()
    assert snapshot == {"EUR": ["61000", 4000.0], "USD": ["69880", 1000.0]}
    values = fiat_values(927 * BTC, 917 * BTC, snapshot, at=4000.0, max_age_s=3600)
    assert values is not None
    assert values.to_json() == {
        "prices": {"EUR": "61000", "USD": "69880"},
        "price_time": 1000.0,
        "value": {"EUR": "56547000.00", "USD": "64778760.00"},
        "moved": {"EUR": "55937000.00", "USD": "64079960.00"},
    }
    # USD is now 3,601 s old: left out, EUR stays.
    assert set(fresh_prices(snapshot, at=4601.0, max_age_s=3600)) == {"EUR"}
    assert fiat_values(BTC, BTC, snapshot, at=10_000.0, max_age_s=3600) is None
    assert fiat_values(BTC, BTC, {}, at=0.0) is None
    assert fiat_values(BTC, BTC, None, at=0.0) is None
    assert fresh_prices({"USD": ["NaN", 0.0], "EUR": ["x", 0.0], "GBP": [5, 0.0]}, at=0) == {}
