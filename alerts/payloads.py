"""What an alert says: the Standard Webhooks body, and the words of subjects and headlines.

A payload is built once, when its delivery is created, and stored on the row; email and webhook
transports both render from it, and a retry sends the same bytes.
"""

from __future__ import annotations

import json
import uuid
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from alerts.chat_format import when
from detection.domain.prices import format_money
from detection.models import Flow
from detection.summary import event_summary

KIND_PREFIX = {
    "seen": "",
    "replaced": "Replaced (RBF): ",
    "dropped": "Dropped from the mempool: ",
    "reorged": "Reorged, pending again: ",
}


def event_payload(event) -> dict[str, Any]:
    """The body for one whale event, before the per-subscription part is added."""
    data = event_summary(event)
    # The event's public id; integer keys never leave the portal.
    data["id"] = str(event.uid)
    data["url"] = f"{settings.SITE_URL}/whales/{event.whale.txid}/"
    data["api_url"] = f"{settings.SITE_URL}/api/v1/whales/{event.whale.txid}/"
    return {"type": f"whale.{event.kind}", "timestamp": event.occurred_at.isoformat(), "data": data}


def for_subscription(base: dict[str, Any], subscription) -> dict[str, Any]:
    subscription_part = {"id": str(subscription.public_id), "name": subscription.name}
    return {**base, "data": {**base["data"], "subscription": subscription_part}}


def with_watch(body: dict[str, Any], watch_part: dict[str, Any]) -> dict[str, Any]:
    """An alert for someone watching the transaction (issue 21): their entries and labels."""
    return {**body, "data": {**body["data"], "watch": watch_part}}


def digest_payload(payloads: list[dict[str, Any]], subscription, reason: str) -> dict[str, Any]:
    events = [p.get("data", {}) for p in payloads]
    return {
        "type": "whale.digest",
        "timestamp": timezone.now().isoformat(),
        "data": {
            "count": len(events),
            "reason": reason,
            "subscription": None
            if subscription is None
            else {"id": str(subscription.public_id), "name": subscription.name},
            "events": [{k: v for k, v in e.items() if k != "subscription"} for e in events],
        },
    }


def sample_payload() -> dict[str, Any]:
    """A realistic but clearly fake event for the "send test event" button."""
    return {
        "type": "whale.test",
        "timestamp": timezone.now().isoformat(),
        "data": {
            "id": str(uuid.uuid4()),
            "test": True,
            "kind": "seen",
            "message": "A test event from Whale Watch. Your endpoint verified it if you see this.",
            "whale": {
                "txid": "0" * 64,
                "status": "pending",
                "value_btc": "512.30000000",
                "value_sat": 51_230_000_000,
                "flow": "exchange_inflow",
                "from_entity": None,
                "to_entity": "Binance",
                "prediction": {"urgency": 0.91, "band": "high", "projected_block": 0},
            },
        },
    }


def body_bytes(payload: dict[str, Any]) -> str:
    """The exact text that is signed and sent: compact, key-sorted, so a retry is identical."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


# --- words ------------------------------------------------------------------------------------


def short_btc(value_btc: str | None) -> str:
    if value_btc is None:
        return "?"
    amount = Decimal(value_btc).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)
    return f"{amount:,}"


def route(whale: dict[str, Any]) -> str:
    source, target = whale.get("from_entity"), whale.get("to_entity")
    if source and target:
        return f" {source} → {target}"
    if target:
        return f" → {target}"
    if source:
        return f" from {source}"
    return ""


def amount_words(whale: dict[str, Any]) -> str:
    """What moved, with the total beside it when change was taken off: "0.7 BTC (of 133.3)"."""
    total = whale.get("value_btc")
    moved = whale.get("moved_btc") or total
    text = f"{short_btc(moved)} BTC"
    if moved is not None and total is not None and Decimal(moved) != Decimal(total):
        text += f" (of {short_btc(total)} BTC)"
    return text


def fiat_words(whale: dict[str, Any], which: str, currency: str = "USD") -> str | None:
    """The exact fiat of `which` ("value" or "moved") in `currency`, else in USD, else None."""
    values = (whale.get("fiat") or {}).get(which) or {}
    for code in (currency, "USD"):
        if values.get(code) is not None:
            return format_money(values[code], code)
    return None


def headline(data: dict[str, Any], currency: str = "USD") -> str:
    """E.g. "512.3 BTC → Binance (exchange inflow) · $35,799,524.00 · urgency 0.91 · next block"."""
    whale = data.get("whale") or {}
    kind = data.get("kind", "seen")
    flow = whale.get("flow") or Flow.UNKNOWN
    flow = Flow(flow).label.lower() if flow in Flow.values else flow
    text = f"{amount_words(whale)}{route(whale)} ({flow})"
    money = fiat_words(whale, "moved", currency)
    if money:
        text += f" · {money}"
    if kind == "confirmed":
        height = whale.get("confirmed_height")
        prefix = f"Confirmed in block {height:,}: " if height else "Confirmed: "
        waited = whale.get("blocks_waited")
        suffix = f" · waited {waited} block{'s' if waited != 1 else ''}" if waited else ""
        return prefix + text + suffix
    parts = [KIND_PREFIX.get(kind, "") + text]
    prediction = whale.get("prediction") or {}
    if kind in ("seen", "replaced") and prediction.get("urgency") is not None:
        parts.append(f"urgency {prediction['urgency']:.2f}")
    if kind in ("seen", "replaced", "reorged") and when(prediction):
        parts.append(when(prediction))
    return " · ".join(parts)


def digest_headline(payload: dict[str, Any]) -> str:
    data = payload.get("data", {})
    count = data.get("count", 0)
    # One line whatever the stored name holds: the headline becomes an e-mail subject.
    name = " ".join(str((data.get("subscription") or {}).get("name", "")).split())
    label = f" for “{name}”" if name else ""
    return f"{count} whale alert{'s' if count != 1 else ''}{label}"


def subject(payload: dict[str, Any], currency: str = "USD") -> str:
    if payload.get("type") == "whale.digest":
        return f"Whale Watch digest: {digest_headline(payload)}"
    return headline(payload.get("data", {}), currency)
