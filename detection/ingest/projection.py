"""Pure block projection: which of the next blocks each mempool tx would land in.

Two paths over the same records ``txid -> (fee, weight, effective_rate, sigops)``:

- **cheap** (no parent links; the live case): sort by effective fee rate (mempool.space's
  ``effectiveFeePerVsize`` is already package/CPFP-aware), ties by txid, and fill blocks greedily.
  A tx that does not fit is parked and retried first in the next block; a block closes once it is
  within 4,000 WU of full and 1,000 txs in a row failed (Bitcoin Core's rule).
- **packages** (parent links known; replay of a node's mempool, the Core cross-check): Bitcoin
  Core's ``BlockAssembler::addPackageTxs`` — rank each tx with its unconfirmed ancestors by package
  fee over sigop-adjusted, rounded-up vsize ``ceil(max(weight, sigops * 20) / 4)``, re-score the
  descendants of every included package ("modified" entries), break ties by txid.

Both respect the block limits (4,000,000 WU with 4,000 reserved for the coinbase; 80,000 sigops
with 400 reserved). Seven blocks are built; the eighth receives everything else, like
mempool.space's ``mempool-blocks``.

``Projection`` answers: the projected block of a tx, per-block summaries, ``fee_percentile(r)``
(vsize-weighted share of the mempool paying less than r) and ``block_for_rate(r)`` (where a tx
paying r would land).
"""

from __future__ import annotations

import gc
import heapq
import time
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from detection.ingest.protocol import TxRecord

WITNESS_SCALE_FACTOR = 4
BYTES_PER_SIGOP = 20  # Core's -bytespersigop default: one sigop costs as much as 20 WU of size
MAX_CONSECUTIVE_FAILURES = 1000


@dataclass(frozen=True, slots=True)
class BlockLimits:
    max_weight: int = 4_000_000
    reserved_weight: int = 4_000
    max_sigops: int = 80_000
    reserved_sigops: int = 400
    max_blocks: int = 8  # the last one takes everything left over

    @property
    def usable_weight(self) -> int:
        return self.max_weight - self.reserved_weight


@dataclass(frozen=True, slots=True)
class BlockSummary:
    index: int
    tx_count: int
    weight: int
    fees: int
    # [min, p10, p25, p50, p75, p90, max] of effective fee rate, weight-weighted (sat/vB)
    fee_range: tuple[float, ...]
    median_fee_rate: float

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "tx_count": self.tx_count,
            "weight": self.weight,
            "fees": self.fees,
            "fee_range": list(self.fee_range),
            "median_fee_rate": self.median_fee_rate,
        }


@dataclass(slots=True)
class Projection:
    made_at: float
    tip_height: int | None
    blocks: list[BlockSummary]
    # txid -> block index for txs in the full blocks; everything else sits in the last block
    block_index: dict[str, int]
    tx_count: int
    total_weight: int
    limits: BlockLimits = field(default_factory=BlockLimits)
    # Inputs of the percentile tables, built on first use: most projections are only asked
    # `block_of`, and the tables cost a third of the projection on a big mempool.
    _order_desc: list[int] = field(default_factory=list, repr=False)
    _rates: list[float] = field(default_factory=list, repr=False)
    _weights: list[int] = field(default_factory=list, repr=False)
    _rates_asc: list[float] | None = field(default=None, repr=False)
    _cum_weight_asc: list[int] | None = field(default=None, repr=False)

    @property
    def last_block(self) -> int:
        return max(len(self.blocks) - 1, 0)

    def block_of(self, txid: str) -> int:
        """Projected block of a tx in the projected mempool (0 = next)."""
        return self.block_index.get(txid, self.last_block)

    def _weight_below(self, rate: float) -> int:
        if self._rates_asc is None or self._cum_weight_asc is None:
            ascending = self._order_desc[::-1]
            self._rates_asc = list(map(self._rates.__getitem__, ascending))
            self._cum_weight_asc = list(accumulate(map(self._weights.__getitem__, ascending)))
            self._order_desc = self._rates = self._weights = []  # type: ignore[assignment]
        below = bisect_left(self._rates_asc, rate)
        return self._cum_weight_asc[below - 1] if below else 0

    def fee_percentile(self, rate: float) -> float:
        """Weight (= 4 x vsize) share of the mempool paying strictly less than ``rate``."""
        if not self.total_weight:
            return 1.0
        return self._weight_below(rate) / self.total_weight

    def block_for_rate(self, rate: float) -> int:
        """Block a new tx paying ``rate`` would land in: behind everything paying as much."""
        ahead = self.total_weight - self._weight_below(rate)
        return min(ahead // self.limits.usable_weight, self.limits.max_blocks - 1)

    @property
    def next_block_floor_fee_rate(self) -> float | None:
        """Block 0's floor: its lowest effective rate (not a reference to judge a fee by)."""
        return self.blocks[0].fee_range[0] if self.blocks and self.blocks[0].tx_count else None

    @property
    def median_fee_rate(self) -> float | None:
        return self.blocks[0].median_fee_rate if self.blocks and self.blocks[0].tx_count else None


def adjusted_vsize(weight: int, sigops: int) -> int:
    """Core's sigop-adjusted virtual size: ceil(max(weight, sigops * 20) / 4)."""
    cost = max(weight, sigops * BYTES_PER_SIGOP)
    return (cost + WITNESS_SCALE_FACTOR - 1) // WITNESS_SCALE_FACTOR


def project(
    records: Mapping[str, TxRecord],
    *,
    parents: Mapping[str, Sequence[str]] | None = None,
    limits: BlockLimits | None = None,
    made_at: float | None = None,
    tip_height: int | None = None,
) -> Projection:
    """Project the next blocks. With ``parents`` (txid -> in-mempool parent txids) the Core-like
    ancestor-package selection is used, else the cheap effective-rate order.

    Works on index lists rather than per-tx objects: on a 300k mempool this is a few hundred ms.
    """
    gc_was_enabled = gc.isenabled()
    # Everything allocated here is acyclic; letting the collector walk a 300k-tx mempool
    # several times per projection would double its cost.
    gc.disable()
    try:
        return _project(records, parents, limits or BlockLimits(), made_at, tip_height)
    finally:
        if gc_was_enabled:
            gc.enable()


def _project(
    records: Mapping[str, TxRecord],
    parents: Mapping[str, Sequence[str]] | None,
    limits: BlockLimits,
    made_at: float | None,
    tip_height: int | None,
) -> Projection:
    made_at = time.time() if made_at is None else made_at
    txids = list(records)
    recs = list(records.values())
    rates = [record[2] for record in recs]
    weights = [record[1] for record in recs]
    # Rate ties keep arrival order here (a second sort by txid would cost ~0.3 s at 300k).
    order = sorted(range(len(recs)), key=rates.__getitem__, reverse=True)
    if parents:
        members = _select_packages(txids, recs, parents, limits)
    else:
        members = _select_by_rate(recs, order, limits)
    block_index: dict[str, int] = {}
    blocks: list[BlockSummary] = []
    last = len(members) - 1
    for number, block in enumerate(members):
        if number < last:
            for i in block:
                block_index[txids[i]] = number
            blocks.append(_summarise(number, block, recs))
    total_weight = sum(weights)
    if members:
        blocks.append(_summarise_rest(last, members[last], recs, blocks, total_weight))
    return Projection(
        made_at=made_at,
        tip_height=tip_height,
        blocks=blocks,
        block_index=block_index,
        tx_count=len(recs),
        total_weight=total_weight,
        limits=limits,
        _order_desc=order,
        _rates=rates,
        _weights=weights,
    )


def _select_by_rate(recs: list[TxRecord], order: list[int], limits: BlockLimits) -> list[list[int]]:
    max_weight = limits.max_weight
    max_sigops = limits.max_sigops
    near_full = max_weight - 4_000
    blocks: list[list[int]] = []
    pending = order
    for _ in range(limits.max_blocks - 1):
        if not pending:
            break
        block: list[int] = []
        add = block.append
        overflow: list[int] = []
        park = overflow.append
        block_weight = limits.reserved_weight
        block_sigops = limits.reserved_sigops
        failures = 0
        stopped_at = len(pending)
        for position, i in enumerate(pending):
            _fee, weight, _rate, sigops = recs[i]
            cost = sigops * BYTES_PER_SIGOP
            if cost < weight:
                cost = weight
            cost = (cost + 3) & ~3  # 4 x the rounded-up adjusted vsize
            if block_weight + cost >= max_weight or block_sigops + sigops >= max_sigops:
                park(i)
                failures += 1
                if failures > MAX_CONSECUTIVE_FAILURES and block_weight > near_full:
                    stopped_at = position + 1
                    break
                continue
            failures = 0
            block_weight += weight
            block_sigops += sigops
            add(i)
        blocks.append(block)
        # Parked txs pay at least as much as everything not yet scanned: order is preserved.
        overflow.extend(pending[stopped_at:])
        pending = overflow
    if pending or not blocks:
        blocks.append(pending)
    return blocks


def _select_packages(
    txids: list[str],
    recs: list[TxRecord],
    parents_of: Mapping[str, Sequence[str]],
    limits: BlockLimits,
) -> list[list[int]]:
    """Bitcoin Core's ancestor-package block assembly, repeated for each projected block."""
    count = len(recs)
    index = {txid: i for i, txid in enumerate(txids)}
    fee = [record[0] or 0 for record in recs]
    weight = [record[1] for record in recs]
    sigops = [record[3] for record in recs]
    vsize = [adjusted_vsize(w, s) for w, s in zip(weight, sigops, strict=True)]
    parents = [
        [index[p] for p in parents_of.get(txid, ()) if p in index and p != txid] for txid in txids
    ]
    children: list[list[int]] = [[] for _ in range(count)]
    for child, plist in enumerate(parents):
        for parent in plist:
            children[parent].append(child)
    ancestors = _ancestor_sets(parents)
    # Current package values (tx + ancestors not yet included), updated as blocks fill.
    pkg_fee = [fee[i] + sum(fee[a] for a in ancestors[i]) for i in range(count)]
    pkg_size = [vsize[i] + sum(vsize[a] for a in ancestors[i]) for i in range(count)]
    pkg_sigops = [sigops[i] + sum(sigops[a] for a in ancestors[i]) for i in range(count)]
    included = bytearray(count)
    version = [0] * count
    max_weight = limits.max_weight
    max_sigops = limits.max_sigops
    near_full = max_weight - 4_000
    blocks: list[list[int]] = []

    def score(i: int) -> float:
        return pkg_fee[i] / pkg_size[i]

    for _ in range(limits.max_blocks - 1):
        order = [i for i in range(count) if not included[i]]
        if not order:
            break
        order.sort(key=lambda i: (-score(i), txids[i]))
        modified: set[int] = set()
        failed: set[int] = set()
        heap: list[tuple[float, str, int, int]] = []
        block: list[int] = []
        block_weight = limits.reserved_weight
        block_sigops = limits.reserved_sigops
        failures = 0
        cursor = 0
        while True:
            while cursor < len(order) and (
                included[order[cursor]] or order[cursor] in modified or order[cursor] in failed
            ):
                cursor += 1
            while heap and (
                included[heap[0][3]] or heap[0][3] in failed or heap[0][2] != version[heap[0][3]]
            ):
                heapq.heappop(heap)
            if cursor >= len(order) and not heap:
                break
            using_modified = False
            if cursor >= len(order):
                candidate = heap[0][3]
                using_modified = True
            else:
                candidate = order[cursor]
                if heap and (heap[0][0], heap[0][1]) < (-score(candidate), txids[candidate]):
                    candidate = heap[0][3]
                    using_modified = True
                else:
                    cursor += 1
            if (
                block_weight + WITNESS_SCALE_FACTOR * pkg_size[candidate] >= max_weight
                or block_sigops + pkg_sigops[candidate] >= max_sigops
            ):
                if using_modified:
                    heapq.heappop(heap)
                    modified.discard(candidate)
                    failed.add(candidate)
                failures += 1
                if failures > MAX_CONSECUTIVE_FAILURES and block_weight > near_full:
                    break
                continue
            failures = 0
            package = [a for a in ancestors[candidate] if not included[a]]
            package.append(candidate)
            package.sort(key=lambda i: len(ancestors[i]))
            for member in package:
                included[member] = 1
                modified.discard(member)
                block.append(member)
                block_weight += weight[member]
                block_sigops += sigops[member]
            for member in package:
                for descendant in _descendants(member, children):
                    if included[descendant]:
                        continue
                    pkg_fee[descendant] -= fee[member]
                    pkg_size[descendant] -= vsize[member]
                    pkg_sigops[descendant] -= sigops[member]
                    version[descendant] += 1
                    modified.add(descendant)
                    heapq.heappush(
                        heap,
                        (-score(descendant), txids[descendant], version[descendant], descendant),
                    )
        blocks.append(block)
    rest = [i for i in range(count) if not included[i]]
    rest.sort(key=lambda i: -recs[i][2])
    if rest or not blocks:
        blocks.append(rest)
    return blocks


def _ancestor_sets(parents: list[list[int]]) -> list[frozenset[int]]:
    count = len(parents)
    result: list[frozenset[int] | None] = [None] * count
    for start in range(count):
        if result[start] is not None:
            continue
        stack = [start]
        while stack:
            node = stack[-1]
            pending = [p for p in parents[node] if result[p] is None and p not in stack]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            if result[node] is None:
                acc: set[int] = set()
                for p in parents[node]:
                    acc.add(p)
                    acc.update(result[p] or ())
                acc.discard(node)
                result[node] = frozenset(acc)
    return [r or frozenset() for r in result]


def _descendants(start: int, children: list[list[int]]) -> set[int]:
    seen: set[int] = set()
    stack = list(children[start])
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(children[node])
    return seen


def _summarise(number: int, block: list[int], recs: list[TxRecord]) -> BlockSummary:
    members = [recs[i] for i in block]
    weight = sum(record[1] for record in members)
    fees = sum(record[0] or 0 for record in members)
    if not members:
        return BlockSummary(number, 0, 0, 0, (0.0,) * 7, 0.0)
    ascending = sorted((record[2], record[1]) for record in members)
    fee_range = _weighted_percentiles(ascending, weight)
    return BlockSummary(number, len(members), weight, fees, fee_range, fee_range[3])


def _summarise_rest(
    number: int,
    block: list[int],
    recs: list[TxRecord],
    full_blocks: list[BlockSummary],
    total_weight: int,
) -> BlockSummary:
    """The leftover block can hold 95 % of a big mempool: totals by subtraction, rate range
    from an evenly spaced sample (it is already in descending rate order)."""
    if len(block) <= _SAMPLE_ABOVE:
        return _summarise(number, block, recs)
    weight = total_weight - sum(summary.weight for summary in full_blocks)
    fees = sum(record[0] or 0 for record in recs) - sum(summary.fees for summary in full_blocks)
    step = len(block) // _SAMPLE_ABOVE
    sample = [recs[i] for i in block[::step]]
    ascending = sorted((record[2], record[1]) for record in sample)
    fee_range = _weighted_percentiles(ascending, sum(record[1] for record in sample))
    low = recs[block[-1]][2]
    high = recs[block[0]][2]
    fee_range = (min(low, fee_range[0]), *fee_range[1:-1], max(high, fee_range[-1]))
    return BlockSummary(number, len(block), weight, fees, fee_range, fee_range[3])


_SAMPLE_ABOVE = 20_000
_PERCENTILES = (0.10, 0.25, 0.50, 0.75, 0.90)


def _weighted_percentiles(
    ascending: list[tuple[float, int]], total_weight: int
) -> tuple[float, ...]:
    """[min, p10, p25, p50, p75, p90, max] of rate, each tx weighted by its weight."""
    values: list[float] = []
    targets = iter(p * total_weight for p in _PERCENTILES)
    target = next(targets, None)
    running = 0
    for rate, tx_weight in ascending:
        running += tx_weight
        while target is not None and running >= target:
            values.append(rate)
            target = next(targets, None)
        if target is None:
            break
    while len(values) < len(_PERCENTILES):
        values.append(ascending[-1][0])
    return (ascending[0][0], *values, ascending[-1][0])
