"""Apply one ingest lifecycle event to the database: the record of truth.

`record_event(payload)` is what the Celery task calls. It is idempotent: the event row is unique
by its ingest id and by (chain, kind, sequence), and a redelivered payload finds the row and does
nothing. Status changes are conditional on the observation time, because two workers may run a
whale's events out of order. After commit, detection.signals.whale_event_committed announces the
new event (the dashboard pushes it, alerts fan it out).

The payload contract is detection.ingest.events (fields documented in detection.ingest.lifecycle).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from detection import labels as label_store
from detection import stats as rollup
from detection.domain import accuracy, change, flow, prices, urgency
from detection.ingest.events import BadEvent, check_event
from detection.models import (
    Block,
    EventKind,
    Flow,
    Prediction,
    PredictionHourlyOutcome,
    PredictionOutcome,
    WhaleEvent,
    WhaleHourlyCoverage,
    WhaleHourlyVolume,
    WhaleStatus,
    WhaleTransaction,
)
from detection.signals import whale_event_committed
from detection.txshape import SATS_PER_BTC, WhaleTx
from whaleproject.metrics import observe_detection_latency

log = logging.getLogger(__name__)


class BadPayload(ValueError):
    """The ingest sent something this version cannot record; the task logs it and gives up."""


@dataclass(frozen=True)
class RecordResult:
    event_id: int | None
    created: bool
    reason: str = ""


def _time(value: Any, field: str) -> datetime:
    if not isinstance(value, int | float) or value != value:
        raise BadPayload(f"{field} must be a unix time, got {value!r}")
    return datetime.fromtimestamp(float(value), tz=UTC)


def _optional_time(value: Any) -> datetime | None:
    return None if value is None else _time(value, "time")


def record_event(payload: dict[str, Any]) -> RecordResult:
    try:
        kind, txid, event_uid, sequence = check_event(payload)
    except BadEvent as exc:
        raise BadPayload(str(exc)) from None
    try:
        return _record(payload, kind, txid, event_uid, sequence)
    except _WhaleRace:
        # Another worker inserted the same new whale first; our transaction rolled back whole.
        # Once more: now the row is found and locked like any known whale.
        return _record(payload, kind, txid, event_uid, sequence)


class _WhaleRace(Exception):
    pass


def _record(payload: dict[str, Any], kind: str, txid: str, event_uid, sequence) -> RecordResult:
    # _collecting_rollups exits first, so the rollup rows are written just before the commit
    # (also on the early returns, which may still commit a new whale row).
    with transaction.atomic(), _collecting_rollups():
        whale = _whale_for(payload, txid)
        if whale is None and kind == EventKind.REPLACED and payload.get("replaced_txid"):
            # A replacement learnt from a resync answer carries no transaction: the event then
            # belongs to the replaced whale, which is all we know.
            whale = _whale_for({}, payload["replaced_txid"])
        if whale is None:
            return RecordResult(None, False, f"no record of {txid} and no transaction in payload")
        new = _is_new(whale)
        # A whale inserted by this transaction has no events yet: no redelivery to look for.
        if not new and WhaleEvent.everything.filter(uid=event_uid).exists():
            return RecordResult(None, False, "duplicate event id")
        if kind == EventKind.CONFIRMED and _confirmed_there_already(whale, payload):
            # A block scanned again (an ingest restarted between recording a block's whales and
            # saving it as scanned) names a whale this row already has confirmed there.
            return RecordResult(None, False, "already confirmed in that block")
        chain = whale.chain_root
        occurred_at = _time(payload.get("observed_at"), "observed_at")
        event = WhaleEvent(
            uid=event_uid,
            watch_only=whale.watch_only,
            whale=whale,
            chain=chain,
            kind=kind,
            sequence=sequence,
            occurred_at=occurred_at,
            frame_received_at=_optional_time(payload.get("frame_received_at")),
            details=_details(payload),
        )
        if new and chain.pk == whale.pk:
            # Its own chain, created by this transaction: nothing else can hold its keys yet,
            # so the insert needs no savepoint.
            event.save(force_insert=True)
        else:
            try:
                with transaction.atomic():
                    event.save(force_insert=True)
            except IntegrityError:
                return RecordResult(None, False, "duplicate (chain, kind, sequence)")
        apply = _APPLY[kind]
        apply(whale, event, payload)
        # Registered first so the latency is taken at commit, before the push and fan-out run.
        transaction.on_commit(
            lambda: observe_detection_latency("committed", kind, event.frame_received_at)
        )
        transaction.on_commit(lambda: _after_commit(event.pk))
    return RecordResult(event.pk, True)


def _confirmed_there_already(whale: WhaleTransaction, payload: dict[str, Any]) -> bool:
    block = payload.get("block") or {}
    return (
        whale.status == WhaleStatus.CONFIRMED
        and bool(whale.confirmed_hash)
        and whale.confirmed_hash == block.get("hash")
    )


def _details(payload: dict[str, Any]) -> dict[str, Any]:
    keep = ("replaced_txid", "replacing_txid", "block", "projection", "source", "confirmations")
    return {k: payload[k] for k in keep if payload.get(k) is not None}


def _whale_for(payload: dict[str, Any], txid: str) -> WhaleTransaction | None:
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
    seen_at = _time(payload.get("observed_at"), "observed_at")
    if tx.first_seen:
        seen_at = min(seen_at, _time(tx.first_seen, "first_seen"))
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
    _fill_fiat(whale, payload.get("prices"), _time(payload.get("observed_at"), "observed_at"))
    if payload["kind"] == EventKind.SEEN:
        # What _on_seen and _predict would otherwise write in two more UPDATEs.
        whale.status_at = _time(payload.get("observed_at"), "observed_at")
        score = _score(whale, payload.get("projection") or {})
        whale.latest_urgency = score.urgency if score is not None else None
    try:
        # No savepoint: losing the race aborts the whole transaction, and record_event starts
        # over (_WhaleRace), which is rarer and cheaper than a savepoint on every new whale.
        whale.save(force_insert=True)
    except IntegrityError as exc:
        raise _WhaleRace(txid) from exc
    whale.created_by_this_event = True
    _move_whale(None, _shares_of(whale))
    return whale


def _is_new(whale: WhaleTransaction) -> bool:
    return getattr(whale, "created_by_this_event", False)


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


def _set_status(whale: WhaleTransaction, status: str, at: datetime, **fields: Any) -> bool:
    """Change status unless a newer observation already set one."""
    if whale.status_at is not None and at < whale.status_at:
        return False
    # The row is locked (select_for_update) and only changed through this object in this
    # transaction, so its attributes are what the database holds.
    before = _shares_of(whale)
    whale.status = status
    whale.status_at = at
    for name, value in fields.items():
        setattr(whale, name, value)
    whale.save()
    _move_whale(before, _shares_of(whale))
    return True


# --- predictions ------------------------------------------------------------------------------


def _predict(whale: WhaleTransaction, event: WhaleEvent, payload: dict[str, Any]) -> None:
    projection = payload.get("projection") or {}
    previous = None if _is_new(whale) else whale.predictions.order_by("-made_at", "-id").first()
    fee_rate = whale.best_fee_rate
    tip_height = projection.get("tip_height")
    projected_block = projection.get("projected_block")
    if previous is not None:
        change = urgency.material_change(
            urgency.PredictionState(
                txid=whale.txid,
                fee=_fee_at(previous, whale),
                fee_rate=previous.fee_rate,
                projected_block=previous.projected_block,
                tip_height=previous.tip_height,
            ),
            urgency.PredictionState(
                txid=whale.txid,
                fee=whale.fee,
                fee_rate=fee_rate,
                projected_block=projected_block,
                tip_height=tip_height,
            ),
        )
        if not change.material:
            return
    score = _score(whale, projection)
    if score is None:
        return
    made_at = projection.get("made_at")
    root = whale.chain_root
    # A new whale that is its own chain's root has no predictions yet: no query needed.
    first_of_chain = (_is_new(whale) and root.pk == whale.pk) or not Prediction.objects.filter(
        Q(whale=root) | Q(whale__chain=root)
    ).exists()
    prediction = Prediction.objects.create(
        scored=first_of_chain,
        whale=whale,
        event=event,
        made_at=_time(made_at, "projection.made_at") if made_at else event.occurred_at,
        tip_height=tip_height,
        fee_rate=fee_rate,
        projected_block=score.projected_block,
        predicted_blocks=score.predicted_blocks,
        fee_percentile=projection.get("fee_percentile"),
        urgency=score.urgency,
        band=score.band or "",
        eta_seconds=round(score.eta_seconds) if score.eta_seconds is not None else None,
        may_not_confirm_soon=score.may_not_confirm_soon,
        may_be_purged=score.may_be_purged,
        fee_spike=score.fee_spike,
        basis=str(projection.get("basis", ""))[:20],
    )
    if not _is_new(whale):
        _refresh_latest_urgency(whale)
    elif whale.latest_urgency != score.urgency:  # its only prediction; usually set on insert
        whale.latest_urgency = score.urgency
        whale.save(update_fields=["latest_urgency", "updated_at"])
    if whale.status == WhaleStatus.CONFIRMED and whale.confirmed_height is not None:
        _resolve_confirmed([prediction], whale.confirmed_height, whale.confirmed_hash)


def _score(whale: WhaleTransaction, projection: dict[str, Any]) -> urgency.UrgencyScore | None:
    context = urgency.context_from_projection(projection)
    try:
        return urgency.score_urgency(
            whale.best_fee_rate,
            context,
            projected_block=projection.get("projected_block"),
            fee_percentile=projection.get("fee_percentile"),
            fee_spike=bool(projection.get("fee_spike")),
        )
    except ValueError as exc:
        log.warning("prediction skipped for %s: %s", whale.txid, exc)
        return None


def _refresh_latest_urgency(whale: WhaleTransaction) -> None:
    """Keep the denormalised copy the API filters on (min_urgency) equal to the latest prediction.

    Re-read rather than take the new row: a projection's made_at may be older than an earlier
    prediction's when workers run events out of order.
    """
    latest = whale.predictions.order_by("-made_at", "-id").values_list("urgency", flat=True)[:1]
    urgency_now = next(iter(latest), None)
    if urgency_now != whale.latest_urgency:
        whale.latest_urgency = urgency_now
        whale.save(update_fields=["latest_urgency", "updated_at"])


def _fee_at(prediction: Prediction, whale: WhaleTransaction) -> int | None:
    if prediction.fee_rate is None or not whale.vsize:
        return None
    return round(prediction.fee_rate * whale.vsize)


def _resolve_confirmed(predictions, height: int, block_hash: str) -> None:
    now = datetime.now(tz=UTC)
    for prediction in predictions:
        before = _outcome_of(prediction)
        prediction.outcome = PredictionOutcome.CONFIRMED
        prediction.resolved_at = now
        prediction.resolved_height = height
        prediction.resolved_block_hash = block_hash
        if prediction.predicted_blocks and prediction.tip_height is not None:
            try:
                result = accuracy.resolve(
                    prediction.predicted_blocks, prediction.tip_height, height
                )
            except ValueError:
                result = None  # made on a tip at or above the block: not scorable
            if result is not None:
                prediction.actual_blocks = result.actual_blocks
                prediction.hit = result.hit
                prediction.abs_error = result.abs_error
        prediction.save()
        _move_outcome(before, _outcome_of(prediction))


def _close_open_predictions(whale: WhaleTransaction, outcome: str) -> None:
    _update_predictions(
        whale.predictions.filter(outcome=PredictionOutcome.OPEN),
        outcome=outcome,
        resolved_at=datetime.now(tz=UTC),
    )


def _update_predictions(predictions, **fields: Any) -> None:
    """`predictions.update(**fields)`, moving each row's share of the accuracy rollup."""
    rows = list(predictions.values("id", *_OUTCOME_FIELDS))
    if not rows:
        return
    Prediction.objects.filter(pk__in=[row["id"] for row in rows]).update(**fields)
    for row in rows:
        _move_outcome(_outcome_of(row), _outcome_of(row | fields))


# --- one function per event kind -------------------------------------------------------------


def _on_seen(whale: WhaleTransaction, event: WhaleEvent, payload: dict[str, Any]) -> None:
    # Seen again after a drop (re-broadcast): the same chain is pending again.
    if whale.status_at is None or whale.status == WhaleStatus.DROPPED:
        _set_status(whale, WhaleStatus.PENDING, event.occurred_at)
    _predict(whale, event, payload)


def _on_updated(whale: WhaleTransaction, event: WhaleEvent, payload: dict[str, Any]) -> None:
    tx_json = payload.get("tx")
    if tx_json:
        tx = WhaleTx.from_json(tx_json)
        whale.fee = tx.fee
        whale.fee_rate = tx.fee_rate
        whale.effective_fee_rate = tx.effective_fee_rate
        whale.save(update_fields=["fee", "fee_rate", "effective_fee_rate", "updated_at"])
    _predict(whale, event, payload)


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
        _close_open_predictions(whale, PredictionOutcome.REPLACED)
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
        _close_open_predictions(old, PredictionOutcome.REPLACED)
        if double_spend:
            whale.conflict = True
            whale.conflict_winner = True
            whale.save(update_fields=["conflict", "conflict_winner", "updated_at"])
    if whale.status_at is None:
        _set_status(whale, WhaleStatus.PENDING, event.occurred_at)
    _predict(whale, event, payload)


def _pays_someone_else(old: WhaleTransaction, new: WhaleTransaction) -> bool:
    """A replacement that no longer pays the old main recipient is a double spend, not a bump."""

    def main_recipient(whale):
        outputs = [o for o in whale.outputs if o.get("address")]
        return max(outputs, key=lambda o: o["value"])["address"] if outputs else None

    old_to, new_addresses = main_recipient(old), {o.get("address") for o in new.outputs}
    return old_to is not None and old_to not in new_addresses


def _on_dropped(whale: WhaleTransaction, event: WhaleEvent, payload: dict[str, Any]) -> None:
    if _set_status(whale, WhaleStatus.DROPPED, event.occurred_at):
        _close_open_predictions(whale, PredictionOutcome.DROPPED)


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
        defaults={"height": height, "time": _optional_time(block.get("time"))},
    )
    return row


def _on_confirmed(whale: WhaleTransaction, event: WhaleEvent, payload: dict[str, Any]) -> None:
    block = _block_from(payload)
    if block is None:
        # Confirmed somewhere we were not told (a resync answer): record it, score nothing.
        if _set_status(whale, WhaleStatus.CONFIRMED, event.occurred_at):
            _update_predictions(
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
        _resolve_confirmed(
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
    _update_predictions(
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


_APPLY = {
    EventKind.SEEN: _on_seen,
    EventKind.UPDATED: _on_updated,
    EventKind.REPLACED: _on_replaced,
    EventKind.DROPPED: _on_dropped,
    EventKind.CONFIRMED: _on_confirmed,
    EventKind.REORGED: _on_reorged,
    EventKind.CONFIRMATIONS: _on_confirmations,
}


# --- rollups (WhaleHourlyVolume, WhaleHourlyCoverage, PredictionHourlyOutcome) ------------------
#
# Every change to a column the rollups sum goes through _move_whale / _move_outcome with the
# row's share before and after. Inside record_event the differences are collected and written
# once, in key order, just before the commit: the same transaction as the rows, and a fixed lock
# order for the few hot rollup rows (the current hour), which concurrent workers share.

_OUTCOME_FIELDS = (
    "resolved_at",
    "band",
    "outcome",
    "predicted_blocks",
    "actual_blocks",
    "scored",
)


class _RollupDeltas:
    def __init__(self) -> None:
        self.volumes: dict[tuple, list[int]] = {}
        self.coverage: dict[tuple, list[int]] = {}
        self.outcomes: dict[tuple, list[int]] = {}

    @staticmethod
    def move(table: dict, before, after) -> None:
        for share, sign in ((before, -1), (after, 1)):
            if share is None:
                continue
            key, sums = share
            target = table.setdefault(key, [0] * len(sums))
            for i, amount in enumerate(sums):
                target[i] += sign * amount

    def write(self) -> None:
        WhaleHourlyVolume.add({key: tuple(sums) for key, sums in self.volumes.items()})
        WhaleHourlyCoverage.add({key: tuple(sums) for key, sums in self.coverage.items()})
        PredictionHourlyOutcome.add({key: tuple(sums) for key, sums in self.outcomes.items()})


_collector: ContextVar[_RollupDeltas | None] = ContextVar("rollup_deltas", default=None)


@contextmanager
def _collecting_rollups() -> Iterator[None]:
    deltas = _RollupDeltas()
    token = _collector.set(deltas)
    try:
        yield
    finally:
        _collector.reset(token)
    deltas.write()  # not reached on an exception: the transaction rolls back anyway


def _move(table: str, before, after) -> None:
    if before == after:
        return
    deltas = _collector.get()
    if deltas is not None:
        _RollupDeltas.move(getattr(deltas, table), before, after)
        return
    single = _RollupDeltas()  # called outside record_event: write at once
    _RollupDeltas.move(getattr(single, table), before, after)
    single.write()


def _move_whale(before: tuple | None, after: tuple) -> None:
    """`before`/`after`: a whale's (volume share, coverage share), before None when new."""
    _move("volumes", before[0] if before else None, after[0])
    _move("coverage", before[1] if before else None, after[1])


def _move_outcome(before, after) -> None:
    _move("outcomes", before, after)


def _shares_of(whale: WhaleTransaction) -> tuple:
    if whale.watch_only:
        return (None, None)  # watch hits are not whales: no share in the public figures
    return (
        rollup.volume_contribution(
            first_seen_at=whale.first_seen_at,
            flow=whale.flow,
            status=whale.status,
            value=whale.value,
            transfer=whale.transfer,
            moved=whale.moved,
            value_usd=whale.value_usd,
            moved_usd=whale.moved_usd,
        ),
        rollup.coverage_contribution(
            status=whale.status,
            confirmed_at=whale.confirmed_at,
            seen_in_mempool=whale.seen_in_mempool,
        ),
    )


def _outcome_of(prediction: Prediction | dict[str, Any]):
    if isinstance(prediction, Prediction):
        return rollup.outcome_contribution(
            **{name: getattr(prediction, name) for name in _OUTCOME_FIELDS}
        )
    return rollup.outcome_contribution(**{name: prediction[name] for name in _OUTCOME_FIELDS})


# --- after commit -----------------------------------------------------------------------------


def _after_commit(event_id: int) -> None:
    # The dashboard push, then alert fan-out (detection.signals; receivers in INSTALLED_APPS order).
    whale_event_committed.send(sender=WhaleEvent, event_id=event_id)
