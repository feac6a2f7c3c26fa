"""The hourly rollups (WhaleHourlyVolume, WhaleHourlyCoverage, PredictionHourlyOutcome), kept
in the same transaction as the rows they sum.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from detection import stats as rollup
from detection.models import (
    Prediction,
    PredictionHourlyOutcome,
    WhaleHourlyCoverage,
    WhaleHourlyVolume,
    WhaleTransaction,
)

# Every change to a column the rollups sum goes through move_whale / move_outcome with the
# row's share before and after. Inside record_event the differences are collected and written
# once, in key order, just before the commit: the same transaction as the rows, and a fixed lock
# order for the few hot rollup rows (the current hour), which concurrent workers share.

OUTCOME_FIELDS = (
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
def collecting_rollups() -> Iterator[None]:
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


def move_whale(before: tuple | None, after: tuple) -> None:
    """`before`/`after`: a whale's (volume share, coverage share), before None when new."""
    _move("volumes", before[0] if before else None, after[0])
    _move("coverage", before[1] if before else None, after[1])


def move_outcome(before, after) -> None:
    _move("outcomes", before, after)


def shares_of(whale: WhaleTransaction) -> tuple:
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


def outcome_of(prediction: Prediction | dict[str, Any]):
    if isinstance(prediction, Prediction):
        return rollup.outcome_contribution(
            **{name: getattr(prediction, name) for name in OUTCOME_FIELDS}
        )
    return rollup.outcome_contribution(**{name: prediction[name] for name in OUTCOME_FIELDS})
