"""Pure block projection: which of the next blocks each mempool tx would land in.

Two paths over the same records ``txid -> (fee, weight, effective_rate, sigops)``:

- **packages** (parent links known): Bitcoin Core's ``BlockAssembler::addPackageTxs``, exactly.
  Each tx is ranked with its unconfirmed ancestors by min(own rate, package rate) over
  sigop-adjusted, rounded-up vsize ``ceil(max(weight, sigops * 20) / 4)``, compared as exact
  fractions; ties go to the smaller uint256 txid; included packages re-score their descendants
  ("modified" entries); a package enters in (ancestor count, txid) order; assembly stops at the
  first package under ``-blockmintxfee``. On the real 19,873-tx mempool of ``tests/fixtures/gbt``
  block 0 is Core's template: the same 1,767 txs in the same order.
- **cheap** (no parent links): sort by effective fee rate (mempool.space's
  ``effectiveFeePerVsize``), fill blocks greedily; a tx that does not fit is parked and retried
  first in the next block.

Both use Core's budget (``BlockLimits``: 4,000,000 WU with 8,000 reserved, i.e. 3,992,000 for
transactions, strictly below; 80,000 sigops with 400 reserved) and close a block once it is
within 4,000 WU of full and 1,000 txs in a row failed. Seven blocks are built; the eighth
receives everything else, like mempool.space's ``mempool-blocks``.

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
BLOCK_FULL_ENOUGH_WEIGHT_DELTA = 4_000  # Core gives up after 1,000 misses once this close


@dataclass(frozen=True, slots=True)
class BlockLimits:
    """Bitcoin Core's block assembly budget. Defaults are Core 29+'s: ``-blockmaxweight``
    4,000,000 with ``-blockreservedweight`` 8,000 (before 29: a 3,996,000 limit starting at
    4,000; the same 3,992,000 WU for transactions), and ``-blockmintxfee`` 1 sat/kvB (Core 30;
    1,000 before)."""

    max_weight: int = 4_000_000
    reserved_weight: int = 8_000
    max_sigops: int = 80_000
    reserved_sigops: int = 400
    max_blocks: int = 8  # the last one takes everything left over
    min_fee_rate_per_kvb: int = 1  # -blockmintxfee, sat per 1,000 vB

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
    next_block: list[str] = field(default_factory=list)  # block 0's txids, in block order
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
        members = _select_packages(txids, recs, parents, limits, order)
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
        next_block=[txids[i] for i in members[0]] if members else [],
        _order_desc=order,
        _rates=rates,
        _weights=weights,
    )


def _select_by_rate(recs: list[TxRecord], order: list[int], limits: BlockLimits) -> list[list[int]]:
    max_weight = limits.max_weight
    max_sigops = limits.max_sigops
    near_full = max_weight - BLOCK_FULL_ENOUGH_WEIGHT_DELTA
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
    by_rate: list[int],
) -> list[list[int]]:
    """Bitcoin Core's ancestor-package block assembly (``BlockAssembler::addPackageTxs``),
    repeated for each projected block as mempool.space does.

    Exact where Core is exact: a tx's score is the lower of its own rate and its package's
    (Core's ``CompareTxMemPoolEntryByAncestorFee``, mempool's ``calc_new_score``), compared by
    cross-multiplied integers (``_score_key``); ties go to the smaller uint256 txid; a package
    fits while reserved + taken + 4 x its adjusted vsize stays under the limit; assembly stops at
    the first package paying less than ``-blockmintxfee``; a package enters in (ancestor count,
    uint256 txid) order.
    """
    count = len(recs)

    def own(i: int) -> tuple[int, int, int]:
        """(fee, sigop-adjusted vsize, sigops) of one tx."""
        fee, weight, _rate, sigops = recs[i]
        cost = sigops * BYTES_PER_SIGOP
        return int(fee or 0), ((weight if weight > cost else cost) + 3) >> 2, sigops

    # Sparse, and per tx only where needed: a 300k mempool must not cost a dozen full lists.
    parents: dict[int, list[int]] = {}
    children: dict[int, list[int]] = {}
    if parents_of:
        linked = set(parents_of)
        for plist in parents_of.values():
            linked.update(plist)
        index = {txid: i for i, txid in enumerate(txids) if txid in linked}
        for txid, plist in parents_of.items():
            child = index.get(txid)
            if child is None:
                continue
            for parent_txid in plist:
                parent = index.get(parent_txid)
                if parent is None or parent == child or parent in parents.get(child, ()):
                    continue
                parents.setdefault(child, []).append(parent)
                children.setdefault(parent, []).append(child)
    ancestors = _ancestor_sets(parents)
    # Package values [fee, vsize, sigops] (tx + ancestors not yet included) of the txs that have
    # ancestors, updated as blocks fill; a tx without is its own package.
    packages: dict[int, list[int]] = {}
    for i, members in ancestors.items():
        package = list(own(i))
        for a in members:
            for n, value in enumerate(own(a)):
                package[n] += value
        packages[i] = package

    def package_of(i: int) -> Sequence[int]:
        package = packages.get(i)
        return own(i) if package is None else package

    def score_of(i: int) -> int:
        fee, vsize, _sigops = own(i)
        return _score_key(fee, vsize, *package_of(i)[:2])

    score = [
        (int(r[0] or 0) << 64)
        // (
            (
                (r[1] if r[1] > r[3] * BYTES_PER_SIGOP else r[3] * BYTES_PER_SIGOP)
                + WITNESS_SCALE_FACTOR
                - 1
            )
            // WITNESS_SCALE_FACTOR
        )
        for r in recs
    ]
    for i in ancestors:
        score[i] = score_of(i)
    ties: dict[int, int] = {}

    def tie(i: int) -> int:
        value = ties.get(i)
        if value is None:
            value = ties[i] = _uint256_tie(txids[i])
        return value

    def key(i: int) -> tuple[int, int]:
        """Larger is better: the score, then the smaller uint256 txid. ``score`` keeps the
        values ``order`` was sorted by; a modified package's score is recomputed."""
        return (score_of(i) if modified[i] else score[i]), tie(i)

    order = sorted(range(count), key=score.__getitem__, reverse=True)
    # Equal scores are put in uint256 order only as far as the blocks reach: the leftover block
    # is ordered by rate anyway, and most of a big mempool never gets near a block.
    tied_upto = 0
    included = bytearray(count)
    modified = bytearray(count)  # package changed since `order` was sorted
    still_modified: set[int] = set()  # modified and not yet included
    max_weight = limits.max_weight
    max_sigops = limits.max_sigops
    near_full = max_weight - BLOCK_FULL_ENOUGH_WEIGHT_DELTA
    min_rate_per_kvb = limits.min_fee_rate_per_kvb
    blocks: list[list[int]] = []
    start = 0
    for _ in range(limits.max_blocks - 1):
        while start < count and included[order[start]]:
            start += 1
        if start >= count:
            break
        # Max-heap (negated) of modified packages; stale entries are skipped by key mismatch.
        current: dict[int, tuple[int, int]] = {i: key(i) for i in still_modified}
        heap = [(-k[0], -k[1], i) for i, k in current.items()]
        heapq.heapify(heap)
        failed: set[int] = set()
        block: list[int] = []
        block_weight = limits.reserved_weight
        block_sigops = limits.reserved_sigops
        failures = 0
        cursor = start
        while True:
            while True:
                if cursor >= tied_upto and tied_upto < count:
                    fixed_from = tied_upto
                    tied_upto = _order_ties(order, score, tie, fixed_from, fixed_from + 2048)
                    cursor = min(cursor, fixed_from)  # [fixed_from, cursor) was only reordered
                while cursor < tied_upto and (
                    included[order[cursor]] or modified[order[cursor]] or order[cursor] in failed
                ):
                    cursor += 1
                if cursor < tied_upto or tied_upto >= count:
                    break
            while heap and current.get(heap[0][2]) != (-heap[0][0], -heap[0][1]):
                heapq.heappop(heap)
            if cursor >= count and not heap:
                break
            using_modified = False
            if cursor >= count or (heap and _better(heap[0], order[cursor], score, tie)):
                candidate = heap[0][2]
                using_modified = True
            else:
                candidate = order[cursor]
                cursor += 1
            package_fee, package_size, package_sigops = package_of(candidate)
            if package_fee * 1000 < min_rate_per_kvb * package_size:
                break  # everything else pays less than -blockmintxfee
            if (
                block_weight + WITNESS_SCALE_FACTOR * package_size >= max_weight
                or block_sigops + package_sigops >= max_sigops
            ):
                if using_modified:
                    heapq.heappop(heap)
                    del current[candidate]
                    failed.add(candidate)
                failures += 1
                if failures > MAX_CONSECUTIVE_FAILURES and block_weight > near_full:
                    break
                continue
            failures = 0
            package = [a for a in ancestors.get(candidate, ()) if not included[a]]
            package.append(candidate)
            if len(package) > 1:
                depth = [len(ancestors.get(i, ())) for i in package]
                if len(set(depth)) == len(depth):  # no equal ancestor counts: no tie to break
                    package = [i for _d, i in sorted(zip(depth, package, strict=True))]
                else:
                    package.sort(key=lambda i: (len(ancestors.get(i, ())), -tie(i)))
            for member in package:
                included[member] = 1
                current.pop(member, None)
                still_modified.discard(member)
                block.append(member)
                record = recs[member]
                block_weight += record[1]
                block_sigops += record[3]
            if not children:
                continue
            in_package = set(package)
            for member in package:
                if member not in children:
                    continue
                member_fee, member_size, member_sigops = own(member)
                for descendant in _descendants(member, children):
                    if included[descendant] or descendant in in_package:
                        continue
                    values = packages[descendant]  # a descendant always has ancestors
                    values[0] -= member_fee
                    values[1] -= member_size
                    values[2] -= member_sigops
                    modified[descendant] = 1
                    still_modified.add(descendant)
                    k = current[descendant] = key(descendant)
                    heapq.heappush(heap, (-k[0], -k[1], descendant))
        blocks.append(block)
    for big in (score, order, ties):
        big.clear()  # freed before the leftover block is built
    # In descending effective rate (``by_rate``): _summarise_rest reads its range off the ends.
    rest = [i for i in by_rate if not included[i]]
    if rest or not blocks:
        blocks.append(rest)
    return blocks


def _better(top: tuple[int, int, int], other: int, score: list[int], tie) -> bool:
    """Whether the modified heap's top beats ``other`` (the tie only computed when needed)."""
    top_score, other_score = -top[0], score[other]
    if top_score != other_score:
        return top_score > other_score
    return -top[1] > tie(other)


def _order_ties(order: list[int], score: list[int], tie, start: int, end: int) -> int:
    """Put the better uint256 tie first within each run of equal scores (already adjacent) of
    ``order[start:end]``, ``start`` being the start of a run; ``end`` is moved to the end of its
    run, and returned."""
    count = len(order)
    end = min(end, count)
    while 0 < end < count and score[order[end]] == score[order[end - 1]]:
        end += 1
    ranked = [score[i] for i in order[start:end]]
    repeats = [k for k in range(1, len(ranked)) if ranked[k] == ranked[k - 1]]
    position = 0
    while position < len(repeats):
        run_end = repeats[position]
        run_start = run_end - 1
        while position + 1 < len(repeats) and repeats[position + 1] == run_end + 1:
            position += 1
            run_end += 1
        position += 1
        run = slice(start + run_start, start + run_end + 1)
        order[run] = sorted(order[run], key=tie, reverse=True)
    return end


_TIE_MAX = (1 << 256) - 1


def _uint256_tie(txid: str) -> int:
    """Core orders equal scores by the uint256 txid, compared from its first stored byte: the
    last byte of the hex shown (mempool.space's ``txidToOrdering``). Smaller wins: inverted."""
    return _TIE_MAX - int.from_bytes(bytes.fromhex(txid), "little")


def _score_key(own_fee: int, own_size: int, package_fee: int, package_size: int) -> int:
    """min(own rate, package rate) as an integer that orders exactly like the fractions.

    Two different rates a/b != c/d differ by at least 1/(b*d) >= 2^-48 for sizes below 2^24
    vB (a package is capped near 2^17), so floor(rate x 2^64) keeps every distinct rate apart
    and every equal pair equal: the order of Core's cross-multiplied comparison, without floats.
    """
    own = (own_fee << 64) // own_size if own_size else 0
    if package_size == own_size:
        return own
    package = (package_fee << 64) // package_size if package_size else 0
    return own if own < package else package


def _ancestor_sets(parents: dict[int, list[int]]) -> dict[int, frozenset[int]]:
    """All unconfirmed ancestors of every tx that has a parent (cycles, impossible in a real
    mempool, cannot loop: a node on the stack is not pushed again)."""
    result: dict[int, frozenset[int]] = {}
    for start in parents:
        if start in result:
            continue
        stack = [start]
        while stack:
            node = stack[-1]
            pending = [p for p in parents.get(node, ()) if p not in result and p not in stack]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            if node not in result:
                acc: set[int] = set()
                for p in parents.get(node, ()):
                    acc.add(p)
                    acc.update(result.get(p, ()))
                acc.discard(node)
                result[node] = frozenset(acc)
    return {i: a for i, a in result.items() if a}


def _descendants(start: int, children: dict[int, list[int]]) -> set[int]:
    seen: set[int] = set()
    stack = list(children.get(start, ()))
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(children.get(node, ()))
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
