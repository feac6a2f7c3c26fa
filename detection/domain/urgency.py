"""Fee urgency, predicted confirmation block and ETA of a whale; fee-spike and material-change rules.

Urgency (0..1) is how hard the sender is pushing for confirmation, judged against the market:

    urgency = weighted mean of the components that are known
      fee      (weight 0.70)  1 / (1 + (0.75 / r)^3), r = fee rate / reference rate
      position (weight 0.20)  max(0, 1 - projected_block / 4)
      percentile (0.10)       fee_percentile (vsize-weighted share of the mempool paying less)

The fee term dominates because it is the sender's choice; position and percentile depend on
what else is in the mempool and only nudge the score (4+ blocks out, position adds nothing).

The reference rate is the next projected block's median fee rate when known (mempool-blocks[0]
``medianFee``), else the mempool's median, floored at 0.1 sat/vB to keep the ratio finite. The
block's floor (``feeRange[0]``, its cheapest tx) is never the reference: with the real
``tx02_ws_mempool_blocks_01`` values (floor 1.083, median 2.048) a 1.5 sat/vB whale is "medium"
(about 0.59), not "high". The fee
curve gives 0.5 at 75 % of the reference, ~0.70 at the reference, ~0.95 at twice it and <0.25
below half of it: with a 10–20 sat/vB market, 50 sat/vB scores above 0.8 and 5 sat/vB below 0.3.
Every component is non-decreasing in the fee rate (the other inputs fixed), so urgency is too.
A zero fee scores 0 outright: nothing pays a miner to include it.

Bands: high >= 0.8, medium >= 0.4, low below (DESIGN §4).

Prediction: `predicted_blocks = projected_block + 1`. Without a projected block it is estimated
from the fee percentile and the mempool's vsize (the vsize paying more, in 1,000,000 vB blocks),
or as the next block when the fee is at least the reference rate; otherwise it stays unknown.

ETA: `predicted_blocks × interval − seconds since the last block`, where the wait for the first
block never drops below 10 % of the interval. Block arrival is memoryless, so subtracting the
elapsed time is optimistic; the floor stops an overdue block from producing an ETA of zero.

may_not_confirm_soon: fee zero, fee below half the reference rate, fee below the purge floor when
given, or a projected block >= 6 (7+ blocks, over an hour at the average interval).

may_be_purged: the fee rate is below the purge floor, the node's ``mempoolminfee`` (BTC/kvB x 1e5
= sat/vB): a full mempool evicts such txs first, and nodes refuse to relay them.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

HIGH = "high"
MEDIUM = "medium"
LOW = "low"
BANDS: tuple[str, ...] = (HIGH, MEDIUM, LOW)
HIGH_THRESHOLD = 0.8
MEDIUM_THRESHOLD = 0.4

DEFAULT_BLOCK_INTERVAL_S = 600.0
BLOCK_VSIZE = 1_000_000  # 4,000,000 WU
PROJECTED_BLOCKS = 8  # mempool.space projects 8 blocks; the 8th holds everything left

FEE_WEIGHT = 0.70
POSITION_WEIGHT = 0.20
PERCENTILE_WEIGHT = 0.10
POSITION_HORIZON_BLOCKS = 4  # projected block at which the position term reaches 0
FEE_CURVE_MIDPOINT = 0.75  # r at which the fee component is 0.5
FEE_CURVE_STEEPNESS = 3.0
MIN_REFERENCE_FEE_RATE = 0.1

SLOW_FEE_RATIO = 0.5
SLOW_PROJECTED_BLOCK = 6
MIN_FIRST_BLOCK_WAIT_FRACTION = 0.1

# Fee spike: the next-block rate above 5x its lowest value of the last 10 minutes.
SPIKE_FACTOR = 5.0
SPIKE_WINDOW_S = 600.0
SPIKE_MIN_BASELINE = 1.0  # sat/vB; 0.1 -> 0.6 in a sub-sat market is not a spike anyone feels

# Material change: what makes a new prediction row worth recording.
MATERIAL_RATE_CHANGE = 0.10  # relative change of the effective rate (CPFP, package changes)
MATERIAL_RATE_CHANGE_MIN_ABS = 0.5  # sat/vB; ignore 1.0 -> 1.1 style noise


@dataclass(frozen=True, slots=True)
class MempoolFeeContext:
    """What the mempool looks like when a whale is scored. Rates in sat/vB, times in seconds."""

    median_fee_rate: float | None = None  # vsize-weighted median of the whole mempool
    next_block_median_fee_rate: float | None = None  # mempool-blocks[0].medianFee
    next_block_floor_fee_rate: float | None = None  # mempool-blocks[0].feeRange[0] (shown only)
    purge_floor_fee_rate: float | None = None  # mempoolminfee in sat/vB, if the source gives it
    mempool_vsize: float | None = None
    block_interval_s: float = DEFAULT_BLOCK_INTERVAL_S
    seconds_since_last_block: float | None = None

    @property
    def reference_fee_rate(self) -> float | None:
        for rate in (self.next_block_median_fee_rate, self.median_fee_rate):
            if rate is not None and math.isfinite(rate):
                return max(rate, MIN_REFERENCE_FEE_RATE)
        return None


def context_from_projection(projection: dict) -> MempoolFeeContext:
    """The fee context of an ingest event's ``projection`` (``detection.ingest.lifecycle``)."""
    return MempoolFeeContext(
        median_fee_rate=projection.get("mempool_median_fee_rate"),
        # Events queued before the references got their names carried block 0's median as
        # "median_fee_rate" (its floor was "next_block_fee_rate", never a reference).
        next_block_median_fee_rate=projection.get(
            "next_block_median_fee_rate", projection.get("median_fee_rate")
        ),
        next_block_floor_fee_rate=projection.get("next_block_floor_fee_rate"),
        purge_floor_fee_rate=projection.get("purge_floor_fee_rate"),
        mempool_vsize=projection.get("mempool_vsize"),
        seconds_since_last_block=projection.get("seconds_since_last_block"),
    )


@dataclass(frozen=True, slots=True)
class UrgencyScore:
    urgency: float | None  # None when the fee is unknown
    band: str | None
    projected_block: int | None  # 0 = next block
    predicted_blocks: int | None  # projected_block + 1
    eta_seconds: float | None
    may_not_confirm_soon: bool
    fee_spike: bool
    reason: str = ""  # why urgency or the prediction is missing, or how the block was estimated
    may_be_purged: bool = False  # paying under the purge floor (mempoolminfee)


def band_for(urgency: float | None) -> str | None:
    if urgency is None:
        return None
    if urgency >= HIGH_THRESHOLD:
        return HIGH
    if urgency >= MEDIUM_THRESHOLD:
        return MEDIUM
    return LOW


def fee_component(fee_rate: float, reference_rate: float) -> float:
    if fee_rate <= 0:
        return 0.0
    # 1 / (1 + (midpoint / ratio)^k), in logs so absurd ratios cannot overflow; the clamp keeps
    # it monotone.
    exponent = FEE_CURVE_STEEPNESS * (
        math.log(FEE_CURVE_MIDPOINT) - math.log(fee_rate) + math.log(reference_rate)
    )
    return 1.0 / (1.0 + math.exp(min(700.0, max(-700.0, exponent))))


def position_component(projected_block: int) -> float:
    return max(0.0, 1.0 - projected_block / POSITION_HORIZON_BLOCKS)


def score_urgency(
    fee_rate: float | None,
    context: MempoolFeeContext,
    *,
    projected_block: int | None = None,
    fee_percentile: float | None = None,
    fee_spike: bool = False,
) -> UrgencyScore:
    """Score one whale. `fee_rate` is its best rate (effective if known); None = fee unknown.

    `projected_block` comes from the source (position.block) or the local projection;
    `fee_spike` from a FeeSpikeDetector fed the same stream.
    """
    if fee_rate is not None and (not math.isfinite(fee_rate) or fee_rate < 0):
        raise ValueError(f"fee rate must be a finite number >= 0, got {fee_rate!r}")
    if fee_percentile is not None and not 0.0 <= fee_percentile <= 1.0:
        raise ValueError(f"fee percentile must be within 0..1, got {fee_percentile!r}")
    if projected_block is not None and projected_block < 0:
        raise ValueError(f"projected block must be >= 0, got {projected_block!r}")

    reference = context.reference_fee_rate
    reasons: list[str] = []
    if projected_block is None:
        projected_block, how = _estimate_projected_block(fee_rate, fee_percentile, context)
        reasons.append(how)

    urgency: float | None
    if fee_rate is None:
        urgency = None
        reasons.insert(0, "fee unknown")
    elif fee_rate == 0:
        urgency = 0.0
        reasons.insert(0, "zero fee")
    else:
        urgency = _combine(fee_rate, reference, projected_block, fee_percentile)
        if urgency is None:
            reasons.insert(0, "no market reference (median, next-block rate, position)")

    predicted_blocks = projected_block + 1 if projected_block is not None else None
    return UrgencyScore(
        urgency=urgency,
        band=band_for(urgency),
        projected_block=projected_block,
        predicted_blocks=predicted_blocks,
        eta_seconds=eta_seconds(predicted_blocks, context),
        may_not_confirm_soon=_may_not_confirm_soon(fee_rate, reference, projected_block, context),
        fee_spike=fee_spike,
        reason="; ".join(r for r in reasons if r),
        may_be_purged=may_be_purged(fee_rate, context),
    )


def _combine(
    fee_rate: float,
    reference: float | None,
    projected_block: int | None,
    fee_percentile: float | None,
) -> float | None:
    parts: list[tuple[float, float]] = []
    if reference is not None:
        parts.append((FEE_WEIGHT, fee_component(fee_rate, reference)))
    if projected_block is not None:
        parts.append((POSITION_WEIGHT, position_component(projected_block)))
    if fee_percentile is not None:
        parts.append((PERCENTILE_WEIGHT, fee_percentile))
    if not parts:
        return None
    total_weight = sum(w for w, _ in parts)
    value = sum(w * v for w, v in parts) / total_weight
    return min(1.0, max(0.0, value))


def _estimate_projected_block(
    fee_rate: float | None, fee_percentile: float | None, context: MempoolFeeContext
) -> tuple[int | None, str]:
    if fee_rate is not None and fee_rate <= 0:
        return None, ""
    if fee_percentile is not None and context.mempool_vsize is not None:
        # Rounded to whole vbytes so 0.1 x 30 MvB lands in block 3, not 2.999... -> 2.
        vsize_ahead = round((1.0 - fee_percentile) * context.mempool_vsize)
        block = min(vsize_ahead // BLOCK_VSIZE, PROJECTED_BLOCKS - 1)
        return block, "projected block estimated from fee percentile"
    reference = context.reference_fee_rate
    if fee_rate is not None and reference is not None and fee_rate >= reference:
        return 0, "projected block estimated from fee rate"
    return None, "projected block unknown"


def _may_not_confirm_soon(
    fee_rate: float | None,
    reference: float | None,
    projected_block: int | None,
    context: MempoolFeeContext,
) -> bool:
    if fee_rate is not None:
        if fee_rate == 0:
            return True
        if reference is not None and fee_rate < SLOW_FEE_RATIO * reference:
            return True
        if may_be_purged(fee_rate, context):
            return True
    return projected_block is not None and projected_block >= SLOW_PROJECTED_BLOCK


def may_be_purged(fee_rate: float | None, context: MempoolFeeContext) -> bool:
    floor = context.purge_floor_fee_rate
    return fee_rate is not None and floor is not None and fee_rate < floor


def purge_floor_from_mempoolminfee(btc_per_kvb: float | None) -> float | None:
    """Bitcoin Core's ``mempoolminfee`` is BTC per 1,000 vB: x 1e8 sat / 1e3 vB = x 1e5 sat/vB."""
    if btc_per_kvb is None or not math.isfinite(btc_per_kvb) or btc_per_kvb < 0:
        return None
    return btc_per_kvb * 1e5


def eta_seconds(predicted_blocks: int | None, context: MempoolFeeContext) -> float | None:
    if predicted_blocks is None:
        return None
    if predicted_blocks < 1:
        raise ValueError(f"predicted blocks must be >= 1, got {predicted_blocks!r}")
    interval = context.block_interval_s
    first_block_wait = interval
    if context.seconds_since_last_block is not None:
        elapsed = max(0.0, context.seconds_since_last_block)  # clock skew can make it negative
        first_block_wait = max(interval - elapsed, MIN_FIRST_BLOCK_WAIT_FRACTION * interval)
    return (predicted_blocks - 1) * interval + first_block_wait


# --- fee spikes --------------------------------------------------------------------------------


class FeeSpikeDetector:
    """Feed (time, block-0 median fee rate) samples; `add` says whether fees are spiking now.

    One series only: the median of projected block 0 (the server's ``medianFee`` when it sends
    mempool-blocks, else our projection's). Mixing it with the block's floor fires on noise.

    A spike: the latest rate is more than SPIKE_FACTOR times the lowest rate seen within the last
    SPIKE_WINDOW_S seconds (the baseline floored at SPIKE_MIN_BASELINE). It clears by itself once
    the low samples age out of the window. Samples older than the newest are ignored, so a
    replayed or reordered stream cannot corrupt the window.
    """

    def __init__(
        self,
        factor: float = SPIKE_FACTOR,
        window_s: float = SPIKE_WINDOW_S,
        min_baseline: float = SPIKE_MIN_BASELINE,
    ) -> None:
        self.factor = factor
        self.window_s = window_s
        self.min_baseline = min_baseline
        # Monotonic deque of (time, rate) with increasing rates: the front is the window minimum.
        self._minima: deque[tuple[float, float]] = deque()
        self._last_time: float | None = None
        self._spiking = False

    @property
    def spiking(self) -> bool:
        return self._spiking

    def add(self, at: float, next_block_median_fee_rate: float) -> bool:
        if not math.isfinite(next_block_median_fee_rate) or next_block_median_fee_rate < 0:
            return self._spiking
        if self._last_time is not None and at < self._last_time:
            return self._spiking
        self._last_time = at
        while self._minima and self._minima[0][0] < at - self.window_s:
            self._minima.popleft()
        baseline = self._minima[0][1] if self._minima else None
        while self._minima and self._minima[-1][1] >= next_block_median_fee_rate:
            self._minima.pop()
        self._minima.append((at, next_block_median_fee_rate))
        self._spiking = baseline is not None and next_block_median_fee_rate > self.factor * max(
            baseline, self.min_baseline
        )
        return self._spiking


# --- material change ---------------------------------------------------------------------------

REPLACED = "replaced"
FEE_BUMP = "fee_bump"
FEE_LEARNED = "fee_learned"
EFFECTIVE_RATE_CHANGE = "effective_rate_change"
TARGET_BLOCK_CHANGE = "target_block_change"


@dataclass(frozen=True, slots=True)
class PredictionState:
    """The facts a recorded prediction rests on."""

    txid: str
    fee: int | None
    fee_rate: float | None  # best rate (effective when known)
    projected_block: int | None
    tip_height: int | None

    @property
    def target_height(self) -> int | None:
        if self.projected_block is None or self.tip_height is None:
            return None
        return self.tip_height + self.projected_block + 1


@dataclass(frozen=True, slots=True)
class MaterialChange:
    material: bool
    reasons: tuple[str, ...]


def material_change(previous: PredictionState, current: PredictionState) -> MaterialChange:
    """Whether `current` deserves a new prediction row after `previous`.

    * replaced: the txid differs (RBF: the replacement continues the chain).
    * fee_bump: the tx's own fee went up; fee_learned: it was unknown and now is known.
    * effective_rate_change: the best rate moved by >= 10 % and >= 0.5 sat/vB (CPFP child,
      package change).
    * target_block_change: the predicted confirmation height moved. Heights, not block indexes,
      are compared: after each block every pending tx moves one index forward, which is the
      prediction coming true, not a change. Without a tip height, indexes are compared.
    """
    reasons: list[str] = []
    if previous.txid != current.txid:
        reasons.append(REPLACED)
    if previous.fee is None and current.fee is not None:
        reasons.append(FEE_LEARNED)
    elif previous.fee is not None and current.fee is not None and current.fee > previous.fee:
        reasons.append(FEE_BUMP)
    if _rate_moved(previous.fee_rate, current.fee_rate):
        reasons.append(EFFECTIVE_RATE_CHANGE)
    if previous.target_height is not None and current.target_height is not None:
        if previous.target_height != current.target_height:
            reasons.append(TARGET_BLOCK_CHANGE)
    elif previous.projected_block != current.projected_block:
        reasons.append(TARGET_BLOCK_CHANGE)
    return MaterialChange(bool(reasons), tuple(reasons))


def _rate_moved(before: float | None, after: float | None) -> bool:
    if before is None or after is None:
        return before is None and after is not None
    delta = abs(after - before)
    if delta < MATERIAL_RATE_CHANGE_MIN_ABS:
        return False
    return before == 0 or delta / before >= MATERIAL_RATE_CHANGE
