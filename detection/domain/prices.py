"""Fiat prices from the source's `conversions`, and exact fiat values of whale amounts.

mempool.space sends `conversions` ({"time", "USD", "EUR", "GBP", "CAD", "CHF", "AUD", "JPY", ...})
in its init data and to every client whenever prices change (protocol.md A.3). `PriceBook` keeps
the latest accepted price per currency with the time the ingest received it (a replayed recording
is re-timed on replay, and the server's own `time` is not needed to judge freshness: the server
pushes every change, so the age says how long the source has been silent about prices).

Bad input is rejected and counted, and the previous price kept: a value that is missing (null),
not a number (a string, a boolean), NaN or infinite, zero or negative, absurdly large, or more
than MAX_JUMP times away from the previous price of that currency in one message. Currency codes
that are not three upper-case ISO 4217 letters are ignored (counted apart: they are not errors).

Fiat values are `Decimal` and exact to the cent: sats × price / 10^8, rounded half-even once.
Prices are kept as the decimal text of the number received, so 69880 stays "69880".
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

log = logging.getLogger(__name__)

SATS_PER_BTC = Decimal(100_000_000)
CENT = Decimal("0.01")
ISO_CODE = re.compile(r"[A-Z]{3}")
MAX_JUMP = 1000
# No fiat currency has priced a bitcoin above this; a larger number is garbage.
MAX_PRICE = Decimal(10) ** 12
DEFAULT_MAX_AGE_S = 3600.0


@dataclass(frozen=True, slots=True)
class Quote:
    price: Decimal
    received_at: float


def parse_price(value: Any) -> Decimal | None:
    """The price `value` states, or None when it is not an acceptable price."""
    if type(value) is int:
        price = Decimal(value)
    elif type(value) is float:
        if not math.isfinite(value):
            return None
        price = Decimal(repr(value))
    else:
        return None
    if price <= 0 or price > MAX_PRICE:
        return None
    return price


class PriceBook:
    """Latest price per currency; `update` takes one `conversions` object."""

    def __init__(self) -> None:
        self.quotes: dict[str, Quote] = {}
        self.rejected: Counter[str] = Counter()
        self.ignored_codes = 0
        self.updates = 0

    def update(self, conversions: Any, received_at: float) -> int:
        """Apply one message; returns how many prices were accepted."""
        if not isinstance(conversions, Mapping):
            self.rejected["not_object"] += 1
            return 0
        self.updates += 1
        accepted = 0
        for code, value in conversions.items():
            if code == "time":
                continue
            if type(code) is not str or not ISO_CODE.fullmatch(code):
                self.ignored_codes += 1
                continue
            price = parse_price(value)
            if price is None:
                self._reject("missing" if value is None else "bad_value", code, value)
                continue
            previous = self.quotes.get(code)
            if previous is not None and not (
                previous.price / MAX_JUMP < price < previous.price * MAX_JUMP
            ):
                self._reject("jump", code, value)
                continue
            self.quotes[code] = Quote(price, received_at)
            accepted += 1
        return accepted

    def _reject(self, reason: str, code: str, value: Any) -> None:
        self.rejected[reason] += 1
        # Prices come a few times an hour: one line per rejected price is no flood.
        log.warning("rejected %s price %.40r (%s); keeping the previous one", code, value, reason)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def snapshot(self) -> dict[str, list[Any]]:
        """JSON-able {code: [price text, received_at]} for an event payload."""
        return {code: [str(q.price), q.received_at] for code, q in sorted(self.quotes.items())}


@dataclass(frozen=True, slots=True)
class FiatValues:
    prices: dict[str, Decimal]  # the prices used, fresh ones only
    price_time: float  # when the oldest price used was received
    value: dict[str, Decimal]  # fiat of the total output value, to the cent
    moved: dict[str, Decimal]  # fiat of the moved value, to the cent

    def to_json(self) -> dict[str, Any]:
        def text(values: dict[str, Decimal]) -> dict[str, str]:
            return {code: format(amount, "f") for code, amount in values.items()}

        return {
            "prices": text(self.prices),
            "price_time": self.price_time,
            "value": text(self.value),
            "moved": text(self.moved),
        }


def fiat_of(sats: int, price: Decimal) -> Decimal:
    return (Decimal(sats) * price / SATS_PER_BTC).quantize(CENT, rounding=ROUND_HALF_EVEN)


def fresh_prices(
    snapshot: Any, at: float, max_age_s: float = DEFAULT_MAX_AGE_S
) -> dict[str, Quote]:
    """The prices of an event payload's snapshot no older than `max_age_s` at time `at`.

    Anything malformed is left out: the snapshot crossed a queue, and no price beats a guess.
    """
    if not isinstance(snapshot, Mapping):
        return {}
    fresh: dict[str, Quote] = {}
    for code, item in snapshot.items():
        if type(code) is not str or not ISO_CODE.fullmatch(code):
            continue
        if not (isinstance(item, list | tuple) and len(item) == 2):
            continue
        text, received_at = item
        if type(received_at) not in (int, float) or not math.isfinite(received_at):
            continue
        try:
            price = Decimal(text) if type(text) is str else None
        except InvalidOperation:
            continue
        if price is None or not price.is_finite() or price <= 0 or price > MAX_PRICE:
            continue
        if at - received_at > max_age_s:
            continue
        fresh[code] = Quote(price, float(received_at))
    return fresh


def fiat_values(
    value: int, moved: int, snapshot: Any, at: float, max_age_s: float = DEFAULT_MAX_AGE_S
) -> FiatValues | None:
    """Fiat of `value` and `moved` (sats) at time `at`, or None when no fresh price exists."""
    quotes = fresh_prices(snapshot, at, max_age_s)
    if not quotes:
        return None
    return FiatValues(
        prices={code: q.price for code, q in quotes.items()},
        price_time=min(q.received_at for q in quotes.values()),
        value={code: fiat_of(value, q.price) for code, q in quotes.items()},
        moved={code: fiat_of(moved, q.price) for code, q in quotes.items()},
    )


# --- words ------------------------------------------------------------------------------------

CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "AUD": "A$", "CAD": "C$"}
COMPACT_STEPS = ((Decimal(10) ** 12, "T"), (Decimal(10) ** 9, "B"), (Decimal(10) ** 6, "M"))


def _with_currency(number: str, code: str) -> str:
    symbol = CURRENCY_SYMBOLS.get(code)
    return f"{symbol}{number}" if symbol else f"{code} {number}"


def format_money(amount: Decimal | str, code: str) -> str:
    """The exact amount with thousands separators: "$64,778,760.00", "CHF 1,234.50"."""
    value = Decimal(amount)
    return _with_currency(f"{value:,.2f}", code)


def compact_money(amount: Decimal | str, code: str) -> str:
    """A short figure for headlines and the feed: "$64.8M", "€912.4K" below a million as K."""
    value = Decimal(amount)
    for step, suffix in COMPACT_STEPS:
        if value >= step:
            short = (value / step).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)
            return _with_currency(f"{short:,}{suffix}", code)
    if value >= 1000:
        short = (value / 1000).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)
        return _with_currency(f"{short:,}K", code)
    return format_money(value, code)
