"""The latest fiat prices the portal knows, for the web side (admin, subscription checks).

The ingest process holds the live prices (detection.domain.prices.PriceBook) and writes them into
its heartbeat; when the heartbeat is missing (ingest down, Redis down) the prices stored with the
newest priced whale stand in, with their own time.
"""

from __future__ import annotations

from decimal import Decimal

from detection.domain.prices import Quote, fresh_prices
from detection.models import WhaleTransaction
from whaleproject.health import read_ingest_heartbeat_safely


def latest_prices() -> dict[str, Quote]:
    """{code: Quote(price, received_at)} whatever their age (callers show or judge the age)."""
    heartbeat = read_ingest_heartbeat_safely() or {}
    quotes = fresh_prices(heartbeat.get("prices"), at=0.0, max_age_s=float("inf"))
    if quotes:
        return quotes
    fiat = (
        WhaleTransaction.objects.exclude(fiat={})
        .order_by("-first_seen_at", "-id")
        .values_list("fiat", flat=True)
        .first()
    )
    if not fiat:
        return {}
    received_at = fiat.get("price_time") or 0.0
    result = {}
    for code, text in (fiat.get("prices") or {}).items():
        try:
            result[code] = Quote(Decimal(text), float(received_at))
        except (ArithmeticError, TypeError, ValueError):
            continue
    return result
