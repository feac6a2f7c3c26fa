"""Reading an event payload: its times, the details kept on the event row, and its error.

Every malformed field raises BadPayload, which the task logs and gives up on (a redelivery would
fail the same way).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from detection.models import WhaleTransaction


class BadPayload(ValueError):
    """The ingest sent something this version cannot record; the task logs it and gives up."""


def unix_time(value: Any, field: str) -> datetime:
    if not isinstance(value, int | float) or value != value:
        raise BadPayload(f"{field} must be a unix time, got {value!r}")
    return datetime.fromtimestamp(float(value), tz=UTC)


def optional_unix_time(value: Any) -> datetime | None:
    return None if value is None else unix_time(value, "time")


def event_details(payload: dict[str, Any]) -> dict[str, Any]:
    keep = ("replaced_txid", "replacing_txid", "block", "projection", "source", "confirmations")
    return {k: payload[k] for k in keep if payload.get(k) is not None}


def is_new(whale: WhaleTransaction) -> bool:
    return getattr(whale, "created_by_this_event", False)
