"""What the whale detail page shows: one transaction, its RBF chain, timeline, labels, predictions."""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Q

from detection.models import (
    AddressLabel,
    EventKind,
    Prediction,
    WhaleEvent,
    WhaleTransaction,
)
from detection.summary import whale_summary

TXID_PATTERN = re.compile(r"[0-9a-fA-F]{64}")
MEMPOOL_TX_URL = "https://mempool.space/tx/{txid}"
# A consolidation can have thousands of inputs; the page lists the largest, the API has them all.
MAX_LISTED_IO = 200


def _timeline_text(event: WhaleEvent) -> str:
    details = event.details or {}
    block = details.get("block") or {}
    if event.kind == EventKind.SEEN:
        return "Seen in the mempool"
    if event.kind == EventKind.UPDATED:
        return "Fee, CPFP or block position changed"
    if event.kind == EventKind.REPLACED:
        return "Replaced by a new version (RBF); the alert follows the replacement"
    if event.kind == EventKind.DROPPED:
        return "Dropped from the mempool"
    if event.kind == EventKind.CONFIRMED:
        height = block.get("height")
        return f"Confirmed in block {height}" if height else "Confirmed"
    if event.kind == EventKind.REORGED:
        return "Its block was orphaned (reorg): back to pending"
    if event.kind == EventKind.CONFIRMATIONS:
        count = details.get("confirmations")
        return f"{count} confirmations" if count else "Confirmations reached"
    return event.get_kind_display()


def _labelled(entries: list[dict], current: dict[str, list[AddressLabel]]) -> list[dict]:
    """Each input/output with every label known for its address (now, and at classification)."""
    rows = []
    for entry in entries:
        address = entry.get("address")
        labels = [
            {
                "entity": label.entity,
                "kind": label.kind,
                "source": label.source,
                "confidence": label.confidence,
                "derived": label.is_derived,
            }
            for label in current.get(address, [])
        ]
        stored = entry.get("label")
        if stored and not any(
            (lab["entity"], lab["source"]) == (stored.get("entity"), stored.get("source"))
            for lab in labels
        ):
            labels.insert(0, {**stored, "derived": stored.get("source") == "cluster"})
        rows.append({**entry, "labels": labels})
    return rows


def _largest(entries: list[dict]) -> tuple[list[dict], int]:
    if len(entries) <= MAX_LISTED_IO:
        return entries, 0
    kept = sorted(entries, key=lambda e: e.get("value") or 0, reverse=True)[:MAX_LISTED_IO]
    return kept, len(entries) - MAX_LISTED_IO


def whale_detail_context(whale: WhaleTransaction) -> dict[str, Any]:
    root = whale.chain_root
    members = list(
        WhaleTransaction.objects.filter(Q(pk=root.pk) | Q(chain=root)).order_by(
            "first_seen_at", "id"
        )
    )
    current = next((m for m in reversed(members) if m.replaced_by_id is None), whale)
    events = list(
        WhaleEvent.objects.filter(chain=root)
        .select_related("whale")
        .order_by("occurred_at", "sequence", "id")
    )
    predictions = list(
        Prediction.objects.filter(whale__in=members)
        .select_related("whale")
        .order_by("made_at", "id")
    )
    inputs, more_inputs = _largest(whale.inputs or [])
    outputs, more_outputs = _largest(whale.outputs or [])
    addresses = {e.get("address") for e in inputs + outputs if e.get("address")}
    labels: dict[str, list[AddressLabel]] = {}
    for label in AddressLabel.objects.filter(address__in=addresses).order_by("-confidence"):
        labels.setdefault(label.address, []).append(label)
    return {
        "whale": whale,
        "summary": whale_summary(whale),
        "current": current,
        "members": members,
        "timeline": [{"event": e, "text": _timeline_text(e)} for e in events],
        "predictions": predictions,
        "inputs": _labelled(inputs, labels),
        "outputs": _labelled(outputs, labels),
        "more_inputs": more_inputs,
        "more_outputs": more_outputs,
        "input_count": len(whale.inputs or []),
        "output_count": len(whale.outputs or []),
        "mempool_url": MEMPOOL_TX_URL.format(txid=whale.txid),
    }
