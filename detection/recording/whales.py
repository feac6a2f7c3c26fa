"""A new whale row from the payload's transaction: amounts, labels, flow, change, fiat at detection.

A whale is created by the first event that names it and carries its transaction; the row is
inserted without a savepoint, and a lost insert race (WhaleRace) makes record_event start over.
Below the floor, a transaction is only sent because a watchlist names it: it is kept watch-only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError

from detection import labels as label_store
from detection.domain import change, flow, prices
from detection.models import EventKind, Flow, WhaleTransaction
from detection.recording.payload import BadPayload, unix_time
from detection.recording.predictions import urgency_score
from detection.recording.rollups import move_whale, shares_of
from detection.txshape import SATS_PER_BTC, WhaleTx


class WhaleRace(Exception):
    pass


def whale_for(payload: dict[str, Any], txid: str) -> WhaleTransaction | None:
    """The row the event is about, created from the payload's transaction when new."""
    whale = WhaleTransaction.everything.select_for_update().filter(txid=txid).first()
    if whale is not None:
        return whale
    tx_json = payload.get("tx")
    if not tx_json:
        return None
    try:
        tx = WhaleTx.from_json(tx_json)
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise BadPayload(f"bad transaction: {exc}") from None
    if tx.txid != txid:
        raise BadPayload(f"transaction {tx.txid} does not match event txid {txid}")
    chain_txid = payload.get("chain_txid") or txid
    chain = None
    if chain_txid != txid:
        chain_member = WhaleTransaction.everything.filter(txid=chain_txid).first()
        chain = chain_member.chain_root if chain_member else None
    seen_at = unix_time(payload.get("observed_at"), "observed_at")
    if tx.first_seen:
        seen_at = min(seen_at, unix_time(tx.first_seen, "first_seen"))
    whale = WhaleTransaction(
        txid=txid,
        chain=chain,
        first_seen_at=seen_at,
        seen_in_mempool=payload["kind"] != EventKind.CONFIRMED,
        source=str(payload.get("source", ""))[:200],
        # Below the floor, the ingest only sends it because a watchlist names one of its
        # addresses (issue 21): its watchers' alone, kept out of the public feed and stats.
        watch_only=tx.value < round(settings.WHALE_MIN_BTC * SATS_PER_BTC),
    )
    _fill_from_tx(whale, tx)
    _fill_fiat(whale, payload.get("prices"), unix_time(payload.get("observed_at"), "observed_at"))
    if payload["kind"] == EventKind.SEEN:
        # What transitions._on_seen and predictions.predict would otherwise write in two more
        # UPDATEs.
        whale.status_at = unix_time(payload.get("observed_at"), "observed_at")
        score = urgency_score(whale, payload.get("projection") or {})
        whale.latest_urgency = score.urgency if score is not None else None
    try:
        # No savepoint: losing the race aborts the whole transaction, and record_event starts
        # over (WhaleRace), which is rarer and cheaper than a savepoint on every new whale.
        whale.save(force_insert=True)
    except IntegrityError as exc:
        raise WhaleRace(txid) from exc
    whale.created_by_this_event = True
    move_whale(None, shares_of(whale))
    return whale


def _fill_from_tx(whale: WhaleTransaction, tx: WhaleTx) -> None:
    labels = label_store.label_lookup(
        [i.address for i in tx.inputs if i.address] + [o.address for o in tx.outputs if o.address]
    )
    result = flow.classify(tx, labels)
    whale.value = tx.value
    whale.transfer = tx.transfer
    whale.fee = tx.fee
    whale.vsize = tx.vsize
    whale.weight = tx.weight
    whale.fee_rate = tx.fee_rate
    whale.effective_fee_rate = tx.effective_fee_rate
    whale.has_prevouts = tx.has_prevouts
    whale.inputs = [
        {
            "txid": i.prev_txid,
            "vout": i.prev_vout,
            "address": i.address,
            "value": i.value,
            **_label_json(labels.get(i.address) if i.address else None),
        }
        for i in tx.inputs
    ]
    whale.outputs = [
        {
            "address": o.address,
            "value": o.value,
            "script_type": o.script_type,
            **_label_json(labels.get(o.address) if o.address else None),
        }
        for o in tx.outputs
    ]
    estimate = change.estimate(tx, coinjoin=flow.COINJOIN_LIKE in result.shape_tags)
    whale.moved = estimate.moved
    whale.moved_confidence = estimate.confidence
    whale.change_outputs = list(estimate.change)
    whale.change_methods = list(estimate.methods)
    whale.flow = result.flow if result.flow in Flow.values else Flow.UNKNOWN
    whale.from_entity = result.from_entity or ""
    whale.to_entity = result.to_entity or ""
    whale.shape_tags = list(result.shape_tags)
    if settings.WHALE_CLUSTERING and result.cluster_candidates:
        label_store.save_cluster_labels(result.cluster_candidates, tx.txid)


def _fill_fiat(whale: WhaleTransaction, snapshot: Any, detected_at: datetime) -> None:
    """Fiat values at detection from the prices the ingest knew then; none when stale."""
    values = prices.fiat_values(
        whale.value,
        whale.moved,
        snapshot,
        detected_at.timestamp(),
        settings.WHALE_PRICE_MAX_AGE_SECONDS,
    )
    if values is None:
        return
    whale.fiat = values.to_json()
    whale.price_usd = values.prices.get("USD")
    whale.value_usd = values.value.get("USD")
    whale.moved_usd = values.moved.get("USD")


def _label_json(label) -> dict[str, Any]:
    if label is None:
        return {"label": None}
    return {
        "label": {
            "entity": label.entity,
            "kind": label.kind,
            "source": label.source,
            "confidence": label.confidence,
            "derived": label.is_derived,
        }
    }
