"""How good were the predictions: resolution, rolling windows, coverage, reorgs, the alarm rule.

Pure functions over plain records, so the Django layer can feed rows (or `.values()` dicts turned
into `Outcome`s) and store or render the results.

* A prediction made at tip height T saying "in N blocks" confirms `actual_blocks = height - T`
  blocks later. It is a hit when it is off by at most one block, `|actual_blocks - N| <= 1`, and
  its error is `|actual_blocks - N|`: early and late misses count alike, so predicting late
  ("in 7 blocks" for everything) no longer scores well.
* The catch-all: projected block 7 (N = 8) is mempool.space's last block, "8 or more". It is a
  hit when the whale confirms 8 or more blocks later; its error is how many blocks early it
  confirmed, `max(0, 8 - actual_blocks)`.
* One scored outcome per chain: only the first prediction made for an RBF chain is scored (the
  caller marks it); later predictions are kept for display. A whale whose projected block flaps
  therefore weighs as much as one that never moves.
* Replaced and dropped predictions are counted apart: they never confirmed, so they are neither
  hits nor misses. Coverage is the share of scored outcomes that confirmed and so could be hit
  or missed: `resolved / (resolved + replaced + dropped)`.
* A window holds the outcomes whose `resolved_at` lies in (now - window, now].
* A reorg un-resolves the confirmations that happened in the orphaned blocks: `revert_orphaned`
  splits them off so the caller can set those predictions back to pending.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CONFIRMED = "confirmed"
REPLACED = "replaced"
DROPPED = "dropped"
OUTCOMES: tuple[str, ...] = (CONFIRMED, REPLACED, DROPPED)

UNSCORED_BAND = "unscored"  # predictions made while the fee was unknown
ALL_BANDS = "all"

HOUR = 3600.0
DAY = 24 * HOUR
WINDOWS: tuple[tuple[str, float], ...] = (
    ("1h", HOUR),
    ("24h", DAY),
    ("7d", 7 * DAY),
    ("90d", 90 * DAY),
)

HIT_TOLERANCE_BLOCKS = 1
CATCH_ALL_BLOCKS = 8  # predicted_blocks of projected block 7: "8 or more"

ALARM_HIT_RATE = 0.70
ALARM_MIN_RESOLVED = 20
ALARM_WINDOW_S = DAY
ALARM_REPEAT_S = HOUR


@dataclass(frozen=True, slots=True)
class Resolution:
    actual_blocks: int
    hit: bool
    abs_error: int


def score(predicted_blocks: int, actual_blocks: int) -> tuple[bool, int]:
    """(hit, absolute block error) of "in `predicted_blocks`" against `actual_blocks`."""
    if predicted_blocks >= CATCH_ALL_BLOCKS:
        error = max(0, CATCH_ALL_BLOCKS - actual_blocks)
        return error == 0, error
    error = abs(actual_blocks - predicted_blocks)
    return error <= HIT_TOLERANCE_BLOCKS, error


def resolve(
    predicted_blocks: int, tip_height_at_prediction: int, confirmed_height: int
) -> Resolution:
    """Compare a prediction with the height the whale confirmed at.

    Raises ValueError when the confirmation is at or below the prediction's tip: the prediction
    was made on a chain that no longer holds (reorg) or on a stale tip; the caller should drop
    it (see `revert_orphaned`) rather than score it.
    """
    if predicted_blocks < 1:
        raise ValueError(f"predicted_blocks must be >= 1, got {predicted_blocks}")
    actual_blocks = confirmed_height - tip_height_at_prediction
    if actual_blocks < 1:
        raise ValueError(
            f"confirmed at {confirmed_height}, not above the prediction's tip "
            f"{tip_height_at_prediction}"
        )
    hit, error = score(predicted_blocks, actual_blocks)
    return Resolution(actual_blocks=actual_blocks, hit=hit, abs_error=error)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One resolved prediction. For CONFIRMED, the block fields and `actual_blocks` are set."""

    resolved_at: float  # unix seconds of the confirmation / replacement / drop
    band: str | None  # urgency band when predicted; None = fee unknown
    outcome: str  # CONFIRMED, REPLACED or DROPPED
    predicted_blocks: int | None = None
    actual_blocks: int | None = None
    confirmed_height: int | None = None
    block_hash: str | None = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.outcome!r}")
        if self.outcome == CONFIRMED and (
            self.predicted_blocks is None or self.actual_blocks is None
        ):
            raise ValueError("a confirmed outcome needs predicted_blocks and actual_blocks")

    @property
    def hit(self) -> bool | None:
        if self.outcome != CONFIRMED:
            return None
        assert self.actual_blocks is not None and self.predicted_blocks is not None
        return score(self.predicted_blocks, self.actual_blocks)[0]

    @property
    def abs_error(self) -> int | None:
        if self.outcome != CONFIRMED:
            return None
        assert self.actual_blocks is not None and self.predicted_blocks is not None
        return score(self.predicted_blocks, self.actual_blocks)[1]


def confirmed_outcome(
    *,
    resolved_at: float,
    band: str | None,
    predicted_blocks: int,
    tip_height_at_prediction: int,
    confirmed_height: int,
    block_hash: str | None = None,
) -> Outcome:
    resolution = resolve(predicted_blocks, tip_height_at_prediction, confirmed_height)
    return Outcome(
        resolved_at=resolved_at,
        band=band,
        outcome=CONFIRMED,
        predicted_blocks=predicted_blocks,
        actual_blocks=resolution.actual_blocks,
        confirmed_height=confirmed_height,
        block_hash=block_hash,
    )


@dataclass(frozen=True, slots=True)
class BandStats:
    band: str
    resolved: int  # confirmed predictions, the ones that can hit or miss
    hits: int
    hit_rate: float | None  # None when nothing resolved
    mean_abs_error: float | None
    replaced: int
    dropped: int
    coverage: float | None = None  # resolved / (resolved + replaced + dropped)


def coverage_of(resolved: int, replaced: int, dropped: int) -> float | None:
    total = resolved + replaced + dropped
    return resolved / total if total else None


@dataclass(frozen=True, slots=True)
class WindowStats:
    window: str  # "1h", "24h", "7d", "90d"
    seconds: float
    overall: BandStats
    by_band: dict[str, BandStats]  # high, medium, low, unscored: always all four keys


def band_stats(band: str, outcomes: Iterable[Outcome]) -> BandStats:
    resolved = hits = replaced = dropped = 0
    error_sum = 0
    for outcome in outcomes:
        if outcome.outcome == REPLACED:
            replaced += 1
        elif outcome.outcome == DROPPED:
            dropped += 1
        else:
            resolved += 1
            hits += 1 if outcome.hit else 0
            error_sum += outcome.abs_error or 0
    return BandStats(
        band=band,
        resolved=resolved,
        hits=hits,
        hit_rate=hits / resolved if resolved else None,
        mean_abs_error=error_sum / resolved if resolved else None,
        replaced=replaced,
        dropped=dropped,
        coverage=coverage_of(resolved, replaced, dropped),
    )


def window_stats(outcomes: Iterable[Outcome], now: float, name: str, seconds: float) -> WindowStats:
    inside = [o for o in outcomes if now - seconds < o.resolved_at <= now]
    by_band = {
        band: band_stats(band, [o for o in inside if (o.band or UNSCORED_BAND) == band])
        for band in ("high", "medium", "low", UNSCORED_BAND)
    }
    return WindowStats(name, seconds, band_stats(ALL_BANDS, inside), by_band)


def rolling_windows(
    outcomes: Iterable[Outcome],
    now: float,
    windows: Sequence[tuple[str, float]] = WINDOWS,
) -> dict[str, WindowStats]:
    """Stats per window (1h, 24h, 7d, 90d by default), overall and by urgency band."""
    materialised = list(outcomes)
    return {name: window_stats(materialised, now, name, seconds) for name, seconds in windows}


def coverage(seen_in_mempool_first: int, mined_total: int) -> float | None:
    """Share of mined whales the portal saw in the mempool before their block; None if none."""
    if seen_in_mempool_first < 0 or mined_total < 0 or seen_in_mempool_first > mined_total:
        raise ValueError(f"bad coverage counts {seen_in_mempool_first}/{mined_total}")
    return seen_in_mempool_first / mined_total if mined_total else None


@dataclass(frozen=True, slots=True)
class AlarmDecision:
    alert: bool
    reason: str


def low_accuracy_alarm(
    resolved: int,
    hits: int,
    *,
    now: float,
    last_alert_at: float | None,
    min_hit_rate: float = ALARM_HIT_RATE,
    min_resolved: int = ALARM_MIN_RESOLVED,
    repeat_after_s: float = ALARM_REPEAT_S,
) -> AlarmDecision:
    """Alert when the 24 h hit rate is below 70 % over >= 20 resolved, at most once an hour.

    `resolved`/`hits` are the 24 h overall figures (`rolling_windows(...)["24h"].overall`).
    """
    if resolved < min_resolved:
        return AlarmDecision(False, f"only {resolved} resolved (< {min_resolved})")
    rate = hits / resolved
    if rate >= min_hit_rate:
        return AlarmDecision(False, f"hit rate {rate:.0%} >= {min_hit_rate:.0%}")
    if last_alert_at is not None and now - last_alert_at < repeat_after_s:
        return AlarmDecision(
            False, f"hit rate {rate:.0%}, but alerted {now - last_alert_at:.0f} s ago"
        )
    return AlarmDecision(True, f"hit rate {rate:.0%} over {resolved} resolved predictions")


@dataclass(frozen=True, slots=True)
class ReorgSplit:
    kept: tuple[Outcome, ...]
    reverted: tuple[Outcome, ...]  # confirmations in orphaned blocks: back to pending


def revert_orphaned(
    outcomes: Iterable[Outcome],
    *,
    orphaned_hashes: Iterable[str] = (),
    fork_height: int | None = None,
) -> ReorgSplit:
    """Split off confirmations that happened in orphaned blocks.

    Give the orphaned block hashes when known (exact), or the fork height (the last height the old
    and new chains share): every confirmation above it is reverted. Replaced and dropped outcomes
    are kept; a reorg can resurrect a dropped tx, but that arrives as a new event.
    """
    hashes = frozenset(orphaned_hashes)
    kept: list[Outcome] = []
    reverted: list[Outcome] = []
    for outcome in outcomes:
        orphaned = outcome.outcome == CONFIRMED and (
            (outcome.block_hash is not None and outcome.block_hash in hashes)
            or (
                fork_height is not None
                and outcome.confirmed_height is not None
                and outcome.confirmed_height > fork_height
            )
        )
        (reverted if orphaned else kept).append(outcome)
    return ReorgSplit(tuple(kept), tuple(reverted))
