"""Display formats for whale summaries (detection.summary.whale_summary dicts) and rows.

static/js/feed.js formats live rows the same way; keep the two in step.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from django import template
from django.utils import timezone

from detection.models import Flow
from detection.summary import btc

register = template.Library()


@register.filter
def btc_short(value) -> str:
    """'1,250.00' from a BTC decimal string or satoshis (int): whales need no more digits."""
    if value is None or value == "":
        return "—"
    try:
        amount = Decimal(btc(value)) if isinstance(value, int) else Decimal(str(value))
    except InvalidOperation:
        return "—"
    return f"{amount:,.2f}"


@register.filter
def btc_exact(sats) -> str:
    return "—" if sats is None else btc(int(sats))


@register.filter
def fee_rate(rate) -> str:
    if rate is None:
        return "fee unknown"
    return f"{rate:,.1f} sat/vB" if rate < 100 else f"{rate:,.0f} sat/vB"


@register.filter
def eta(seconds) -> str:
    if seconds is None:
        return ""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "< 1 min"
    if minutes < 90:
        return f"~{minutes} min"
    hours = seconds / 3600
    return f"~{hours:.0f} h" if hours < 48 else f"~{hours / 24:.0f} d"


@register.filter
def block_target(prediction) -> str:
    if not prediction or prediction.get("predicted_blocks") is None:
        return "no prediction"
    blocks = prediction["predicted_blocks"]
    return "next block" if blocks <= 1 else f"within {blocks} blocks"


@register.filter
def flow_label(flow) -> str:
    return Flow(flow).label if flow in Flow.values else "Unknown"


@register.filter
def urgency_percent(prediction) -> int:
    if not prediction or prediction.get("urgency") is None:
        return 0
    return max(0, min(100, round(prediction["urgency"] * 100)))


@register.filter
def urgency_band(prediction) -> str:
    if not prediction or not prediction.get("band"):
        return "unscored"
    return prediction["band"]


@register.filter
def as_datetime(iso: str | None) -> datetime | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso)
    except ValueError:
        return None


@register.filter
def age(iso: str | None) -> str:
    """'42 s', '7 min', '3 h', '2 d': short enough for a table column."""
    moment = as_datetime(iso)
    if moment is None:
        return ""
    seconds = max(0, (timezone.now() - moment).total_seconds())
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    if seconds < 86400:
        return f"{seconds // 3600:.0f} h"
    return f"{seconds // 86400:.0f} d"


@register.filter
def short_txid(txid: str | None) -> str:
    if not txid:
        return ""
    return f"{txid[:8]}…{txid[-6:]}"


@register.filter
def entity_or_unlabelled(entity: str | None) -> str:
    return entity or "unlabelled"


@register.filter
def percent(value, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value * 100:.{int(digits)}f} %"


@register.filter
def words(identifier: str | None) -> str:
    """'rbf_signalled' → 'rbf signalled'."""
    return (identifier or "").replace("_", " ")
