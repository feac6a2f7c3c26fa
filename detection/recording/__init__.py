"""Apply one ingest lifecycle event to the database: the record of truth.

`record_event(payload)` is what the Celery task calls. It is idempotent: the event row is unique
by its ingest id and by (chain, kind, sequence), and a redelivered payload finds the row and does
nothing. Status changes are conditional on the observation time, because two workers may run a
whale's events out of order. After commit, detection.signals.whale_event_committed announces the
new event (the dashboard pushes it, alerts fan it out).

The payload contract is detection.ingest.events (fields documented in detection.ingest.lifecycle).

This module holds the transaction; each job it runs has its own module:
payload (times and details read from the payload), whales (a new whale row from the payload's
transaction), transitions (one function per event kind), predictions (scoring, resolving),
rollups (the hourly sums, collected and written once before the commit) and dispatch (the
announcement after the commit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from detection.ingest.events import BadEvent, check_event
from detection.models import EventKind, WhaleEvent, WhaleStatus, WhaleTransaction
from detection.recording.dispatch import after_commit
from detection.recording.payload import (
    BadPayload,
    event_details,
    is_new,
    optional_unix_time,
    unix_time,
)
from detection.recording.rollups import collecting_rollups
from detection.recording.transitions import APPLY
from detection.recording.whales import WhaleRace, whale_for
from whaleproject.metrics import observe_detection_latency

__all__ = ["BadPayload", "RecordResult", "record_event"]


@dataclass(frozen=True)
class RecordResult:
    event_id: int | None
    created: bool
    reason: str = ""


def record_event(payload: dict[str, Any], *, announce: bool = True) -> RecordResult:
    """`announce=False` records history that is not news (the demo's past week): no latency
    sample, no dashboard push, no alert fan-out after the commit."""
    try:
        kind, txid, event_uid, sequence = check_event(payload)
    except BadEvent as exc:
        raise BadPayload(str(exc)) from None
    try:
        return _record(payload, kind, txid, event_uid, sequence, announce)
    except WhaleRace:
        # Another worker inserted the same new whale first; our transaction rolled back whole.
        # Once more: now the row is found and locked like any known whale.
        return _record(payload, kind, txid, event_uid, sequence, announce)


def _record(
    payload: dict[str, Any], kind: str, txid: str, event_uid, sequence, announce: bool
) -> RecordResult:
    # collecting_rollups exits first, so the rollup rows are written just before the commit
    # (also on the early returns, which may still commit a new whale row).
    with transaction.atomic(), collecting_rollups():
        whale = whale_for(payload, txid)
        if whale is None and kind == EventKind.REPLACED and payload.get("replaced_txid"):
            # A replacement learnt from a resync answer carries no transaction: the event then
            # belongs to the replaced whale, which is all we know.
            whale = whale_for({}, payload["replaced_txid"])
        if whale is None:
            return RecordResult(None, False, f"no record of {txid} and no transaction in payload")
        new = is_new(whale)
        # A whale inserted by this transaction has no events yet: no redelivery to look for.
        if not new and WhaleEvent.everything.filter(uid=event_uid).exists():
            return RecordResult(None, False, "duplicate event id")
        if kind == EventKind.CONFIRMED and _confirmed_there_already(whale, payload):
            # A block scanned again (an ingest restarted between recording a block's whales and
            # saving it as scanned) names a whale this row already has confirmed there.
            return RecordResult(None, False, "already confirmed in that block")
        chain = whale.chain_root
        occurred_at = unix_time(payload.get("observed_at"), "observed_at")
        event = WhaleEvent(
            uid=event_uid,
            watch_only=whale.watch_only,
            whale=whale,
            chain=chain,
            kind=kind,
            sequence=sequence,
            occurred_at=occurred_at,
            frame_received_at=optional_unix_time(payload.get("frame_received_at")),
            details=event_details(payload),
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
        apply = APPLY[kind]
        apply(whale, event, payload)
        if not announce:
            return RecordResult(event.pk, True)
        # Registered first so the latency is taken at commit, before the push and fan-out run.
        transaction.on_commit(
            lambda: observe_detection_latency("committed", kind, event.frame_received_at)
        )
        transaction.on_commit(lambda: after_commit(event.pk))
    return RecordResult(event.pk, True)


def _confirmed_there_already(whale: WhaleTransaction, payload: dict[str, Any]) -> bool:
    block = payload.get("block") or {}
    return (
        whale.status == WhaleStatus.CONFIRMED
        and bool(whale.confirmed_hash)
        and whale.confirmed_hash == block.get("hash")
    )
