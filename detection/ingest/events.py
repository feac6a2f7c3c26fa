"""The whale event contract between the ingest (producer) and the record task (consumer).

One TypedDict per event kind and one validator, `check_event`, which both sides call: the ingest
on every event it makes (detection.ingest.lifecycle) and detection.recording on every payload a
worker receives. The field meanings are documented in detection.ingest.lifecycle. No Django here:
the ingest process stays free of it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Literal, TypedDict

# Every kind a payload may carry; detection.models.EventKind has the same values
# (tests/ingest/test_ingest_events.py holds the two equal).
KINDS = ("seen", "updated", "replaced", "dropped", "confirmed", "reorged", "confirmations")


class BlockRef(TypedDict):
    height: int | None
    hash: str | None
    time: int | None


class ProjectionInfo(TypedDict, total=False):
    projected_block: int | None
    fee_percentile: float | None
    tip_height: int | None
    next_block_median_fee_rate: float | None
    next_block_floor_fee_rate: float | None
    purge_floor_fee_rate: float | None
    made_at: float | None
    basis: str
    fee_spike: bool


class _EventFields(TypedDict):
    event_id: str
    txid: str
    chain_txid: str
    seq: int
    observed_at: float
    frame_received_at: float | None
    source: str
    tx: dict[str, Any] | None
    block: BlockRef | None
    replaced_txid: str | None
    replacing_txid: str | None
    reasons: list[str]
    changes: dict[str, list[Any]]
    projection: ProjectionInfo | None


class SeenEvent(_EventFields):
    kind: Literal["seen"]


class UpdatedEvent(_EventFields):
    kind: Literal["updated"]


class ReplacedEvent(_EventFields):
    kind: Literal["replaced"]


class DroppedEvent(_EventFields):
    kind: Literal["dropped"]


class ConfirmedEvent(_EventFields):
    kind: Literal["confirmed"]


class ReorgedEvent(_EventFields):
    kind: Literal["reorged"]


class ConfirmationsEvent(_EventFields):
    kind: Literal["confirmations"]


WhaleEventPayload = (
    SeenEvent
    | UpdatedEvent
    | ReplacedEvent
    | DroppedEvent
    | ConfirmedEvent
    | ReorgedEvent
    | ConfirmationsEvent
)


class BadEvent(ValueError):
    """A payload this version cannot record."""


def check_event(event: Mapping[str, Any]) -> tuple[str, str, uuid.UUID, int]:
    """(kind, txid, event uuid, seq) of a valid event; BadEvent says what is wrong.

    Only what every kind needs is required: a missing `seq` counts as 0, and the kind-specific
    fields are read (and judged) by the consumer's step for that kind.
    """
    try:
        kind = event["kind"]
        txid = event["txid"]
        event_uid = uuid.UUID(str(event["event_id"]))
        sequence = int(event.get("seq", 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise BadEvent(f"missing or bad field: {exc}") from None
    if kind not in KINDS:
        raise BadEvent(f"unknown event kind {kind!r}")
    return kind, txid, event_uid, sequence
