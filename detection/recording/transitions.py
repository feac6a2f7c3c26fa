"""One function per event kind: the whale's lifecycle (pending, replaced, dropped, confirmed,
reorged back to pending) and what each step does to its predictions.

Status changes are conditional on the observation time, because two workers may run a whale's
events out of order.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from detection.models import (
    Block,
    EventKind,
    PredictionOutcome,
    WhaleEvent,
    WhaleStatus,
    WhaleTransaction,
)
from detection.recording.payload import BadPayload, optional_unix_time
from detection.recording.predictions import (
    close_open_predictions,
    predict,
    resolve_confirmed,
    update_predictions,
)
from detection.recording.rollups import move_whale, shares_of
from detection.txshape import WhaleTx


def _set_status(whale: WhaleTransaction, status: str, at: datetime, **fields: Any) -> bool:
    """Change status unless a newer observation already set one."""
    if whale.status_at is not None and at < whale.status_at:
        return False
    # The row is locked (select_for_update) and only changed through this object in this
    # transaction, so its attributes are what the database holds.
    before = shares_of(whale)
    whale.status = status
    whale.status_at = at
    for name, value in fields.items():
        setattr(whale, name, value)
    whale.save()
    move_whale(before, shares_of(whale))
    return True


def _on_seen(whale: WhaleTransaction, event: WhaleEvent, payload: dict[str, Any]) -> None:
    # Seen again after a drop (re-broadcast): the same chain is pending again.
    if whale.status_at is None or whale.status == WhaleStatus.DROPPED:
        _set_status(whale, WhaleStatus.PENDING, event.occurred_at)
    predict(whale, event, payload)


def _on_updated(whale: WhaleTransaction, event: WhaleEvent, payload: dict[str, Any]) -> None:
    tx_json = payload.get("tx")
    if tx_json:
        tx = WhaleTx.from_json(tx_json)
        whale.fee = tx.fee
        whale.fee_rate = tx.fee_rate
        whale.effective_fee_rate = tx.effective_fee_rate
        whale.save(update_fields=["fee", "fee_rate", "effective_fee_rate", "updated_at"])
    predict(whale, event, payload)


def _on_replaced(whale: WhaleTransaction, event: WhaleEvent, payload: dict[str, Any]) -> None:
    """`whale` is the replacement; the payload names the transaction it replaced."""
    replaced_txid = payload.get("replaced_txid")
    old = (
        WhaleTransaction.everything.select_for_update().filter(txid=replaced_txid).first()
        if replaced_txid
        else None
    )
    if old is not None and old.pk == whale.pk:
        _set_status(whale, WhaleStatus.REPLACED, event.occurred_at)
        close_open_predictions(whale, PredictionOutcome.REPLACED)
        return
    if old is not None and old.pk != whale.pk:
        if whale.chain_id is None and old.chain_root.pk != whale.pk:
            whale.chain = old.chain_root
            whale.save(update_fields=["chain", "updated_at"])
        double_spend = _pays_someone_else(old, whale)
        _set_status(
            old,
            WhaleStatus.REPLACED,
            event.occurred_at,
            replaced_by=whale,
            conflict=old.conflict or double_spend,
            conflict_winner=False if double_spend else old.conflict_winner,
        )
        close_open_predictions(old, PredictionOutcome.REPLACED)
        if double_spend:
            whale.conflict = True
            whale.conflict_winner = True
            whale.save(update_fields=["conflict", "conflict_winner", "updated_at"])
    if whale.status_at is None:
        _set_status(whale, WhaleStatus.PENDING, event.occurred_at)
    predict(whale, event, payload)


def _pays_someone_else(old: WhaleTransaction, new: WhaleTransaction) -> bool:
    """A replacement that no longer pays the old main recipient is a double spend, not a bump."""

    def main_recipient(whale):
        outputs = [o for o in whale.outputs if o.get("address")]
        return max(outputs, key=lambda o: o["value"])["address"] if outputs else None

    old_to, new_addresses = main_recipient(old), {o.get("address") for o in new.outputs}
    return old_to is not None and old_to not in new_addresses


def _on_dropped(whale: WhaleTransaction, event: WhaleEvent, payload: dict[str, Any]) -> None:
    if _set_status(whale, WhaleStatus.DROPPED, event.occurred_at):
        close_open_predictions(whale, PredictionOutcome.DROPPED)


def _block_from(payload: dict[str, Any]) -> Block | None:
    """The event's block row, or None when the source said "confirmed" without saying where."""
    block = payload.get("block") or {}
    if block.get("hash") is None and block.get("height") is None:
        return None
    try:
        height, block_hash = int(block["height"]), str(block["hash"])
    except (KeyError, TypeError, ValueError):
        raise BadPayload(f"bad block in event: {block!r}") from None
    row, _ = Block.objects.get_or_create(
        hash=block_hash,
        defaults={"height": height, "time": optional_unix_time(block.get("time"))},
    )
    return row


def _on_confirmed(whale: WhaleTransaction, event: WhaleEvent, payload: dict[str, Any]) -> None:
    block = _block_from(payload)
    if block is None:
        # Confirmed somewhere we were not told (a resync answer): record it, score nothing.
        if _set_status(whale, WhaleStatus.CONFIRMED, event.occurred_at):
            update_predictions(
                whale.predictions.filter(outcome=PredictionOutcome.OPEN),
                outcome=PredictionOutcome.CONFIRMED,
                resolved_at=datetime.now(tz=UTC),
            )
        return
    first = whale.chain_root.predictions.exclude(tip_height=None).order_by("made_at").first()
    if first is None:
        first = whale.predictions.exclude(tip_height=None).order_by("made_at").first()
    changed = _set_status(
        whale,
        WhaleStatus.CONFIRMED,
        event.occurred_at,
        confirmed_height=block.height,
        confirmed_hash=block.hash,
        confirmed_at=block.time or event.occurred_at,
        blocks_waited=(block.height - first.tip_height) if first else None,
        conflict_winner=True if whale.conflict else whale.conflict_winner,
    )
    if changed:
        resolve_confirmed(
            list(whale.predictions.filter(outcome=PredictionOutcome.OPEN)), block.height, block.hash
        )
        if whale.conflict:
            whale.replaces.filter(conflict=True).update(conflict_winner=False)


def _on_reorged(whale: WhaleTransaction, event: WhaleEvent, payload: dict[str, Any]) -> None:
    """The block that confirmed `whale` left the best chain: back to pending, reopen predictions."""
    orphaned_hash = (payload.get("block") or {}).get("hash") or whale.confirmed_hash
    if orphaned_hash:
        Block.objects.filter(hash=orphaned_hash).update(orphaned=True)
    if whale.confirmed_hash and whale.confirmed_hash == orphaned_hash:
        _set_status(
            whale,
            WhaleStatus.PENDING,
            event.occurred_at,
            confirmed_height=None,
            confirmed_hash="",
            confirmed_at=None,
            blocks_waited=None,
        )
    update_predictions(
        whale.predictions.filter(resolved_block_hash=orphaned_hash),
        outcome=PredictionOutcome.OPEN,
        resolved_at=None,
        resolved_height=None,
        resolved_block_hash="",
        actual_blocks=None,
        hit=None,
        abs_error=None,
    )


def _on_confirmations(whale: WhaleTransaction, event: WhaleEvent, payload: dict[str, Any]) -> None:
    """N confirmations: an alert-only milestone; nothing on the whale changes."""


APPLY = {
    EventKind.SEEN: _on_seen,
    EventKind.UPDATED: _on_updated,
    EventKind.REPLACED: _on_replaced,
    EventKind.DROPPED: _on_dropped,
    EventKind.CONFIRMED: _on_confirmed,
    EventKind.REORGED: _on_reorged,
    EventKind.CONFIRMATIONS: _on_confirmations,
}
