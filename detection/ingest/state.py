"""The ingest process's copy of the mempool, sized for a 300,000-tx mempool.

Every tx is one dict entry ``txid -> (fee, weight, effective_rate, sigops)`` (a tuple of four
numbers, about 350 bytes with its key); only whales keep a full ``WhaleTx``. Parent links are kept
only for txs spending another mempool tx (``parents``: txid -> in-mempool parent txids, from the
``vin`` of the ``added`` objects), so the live projection assembles Core's ancestor packages.

Memory pressure is computed from an RSS figure the caller reads (psutil), so this module stays
pure and testable:

- NORMAL below ``warning_mb``;
- WARNING at/above ``warning_mb``: shed the lowest-rate non-whale txs down to
  ``warning_keep_fraction`` of the mempool and refuse new txs paying less than what was shed;
- CRITICAL at/above ``critical_mb``: the same, down to ``critical_keep_fraction``;
- RECOVERY once RSS is below ``recovery_mb`` after WARNING/CRITICAL; back to NORMAL only after
  staying below ``recovery_mb`` for ``recovery_hold_s`` (hysteresis: CPython rarely returns freed
  memory, so a single low reading proves little). Between ``recovery_mb`` and ``warning_mb`` the
  level stays where it was.

Whales and the ``protected_top_fee`` highest-fee txs are never shed. Shedding happens on entering a
level and then at most once per ``shed_cooldown_s`` while it persists, so RSS that lags the freeing
does not make us shed the whole mempool.
"""

from __future__ import annotations

import enum
import heapq
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from detection.ingest.protocol import ParsedFrame, TxRecord
from detection.txshape import WhaleTx

log = logging.getLogger(__name__)


class MemoryLevel(enum.StrEnum):
    NORMAL = "normal"
    WARNING = "warning"
    CRITICAL = "critical"
    RECOVERY = "recovery"


@dataclass(slots=True)
class MemoryPolicy:
    warning_mb: float = 400.0
    critical_mb: float = 500.0
    recovery_mb: float = 350.0
    warning_keep_fraction: float = 0.75
    critical_keep_fraction: float = 0.4
    recovery_hold_s: float = 60.0
    shed_cooldown_s: float = 30.0
    protected_top_fee: int = 100


class MempoolState:
    def __init__(self, policy: MemoryPolicy | None = None) -> None:
        self.txs: dict[str, TxRecord] = {}
        self.parents: dict[str, list[str]] = {}  # only txs with an unconfirmed parent
        self.whales: dict[str, WhaleTx] = {}
        self.policy = policy or MemoryPolicy()
        self.level = MemoryLevel.NORMAL
        self.shed_total = 0
        self.refused_total = 0  # txs not admitted while under pressure (below the shed floor)
        self.shed_events = 0
        self.admission_floor: float | None = None
        self._below_recovery_since: float | None = None
        self._last_shed_at: float | None = None

    def __len__(self) -> int:
        return len(self.txs)

    def __contains__(self, txid: object) -> bool:
        return txid in self.txs

    def get(self, txid: str) -> TxRecord | None:
        return self.txs.get(txid)

    def items(self) -> Iterator[tuple[str, TxRecord]]:
        return iter(self.txs.items())

    # -- applying frames --------------------------------------------------------------------

    def apply(self, frame: ParsedFrame) -> None:
        """Add/remove what the frame says. Whales are added with their full shape."""
        txs = self.txs
        if frame.added:
            floor = self.admission_floor
            if floor is None:
                txs.update(frame.added)
                if frame.parents:
                    self.parents.update(frame.parents)
            else:
                whales = frame.whales
                kept = [(t, r) for t, r in frame.added if r[2] >= floor or t in whales]
                self.refused_total += len(frame.added) - len(kept)
                txs.update(kept)
                for txid, parents in frame.parents.items():
                    if txid in txs:
                        self.parents[txid] = parents
        if frame.whales:
            self.whales.update(frame.whales)
        for txid, rate in frame.rate_updates.items():
            record = txs.get(txid)
            if record is not None and record[2] != rate:
                txs[txid] = (record[0], record[1], rate, record[3])
        for old, _new in frame.replaced:
            self._discard(old)
        self._discard_many(frame.removed)
        self._discard_many(frame.mined)
        self._discard_many(frame.tx_confirmed)

    def _discard(self, txid: str) -> None:
        self.txs.pop(txid, None)
        self.parents.pop(txid, None)
        self.whales.pop(txid, None)

    def _discard_many(self, txids: Iterable[str]) -> None:
        pop = self.txs.pop
        pop_parents = self.parents.pop
        for txid in txids:
            pop(txid, None)
            pop_parents(txid, None)
        if self.whales:
            pop_whale = self.whales.pop
            for txid in txids:
                pop_whale(txid, None)

    def discard_mined(self, txids: list[str]) -> int:
        """Forget the txs of a scanned block (ghosts: mined while we were away, no ``mined``
        frame ever came). Returns how many were still held."""
        held = sum(1 for txid in txids if txid in self.txs)
        self._discard_many(txids)
        return held

    def clear(self) -> None:
        self.txs.clear()
        self.parents.clear()
        self.whales.clear()

    # -- memory pressure --------------------------------------------------------------------

    def update_memory(self, rss_mb: float, now: float) -> MemoryLevel:
        """Move between levels for this RSS reading and shed if the level asks for it."""
        policy = self.policy
        previous = self.level
        if rss_mb >= policy.critical_mb:
            self._below_recovery_since = None
            self.level = MemoryLevel.CRITICAL
            self._maybe_shed(policy.critical_keep_fraction, now, entering=previous != self.level)
        elif rss_mb >= policy.warning_mb:
            self._below_recovery_since = None
            # From CRITICAL, falling under critical_mb is not yet relief: stay until recovery.
            if previous != MemoryLevel.CRITICAL:
                self.level = MemoryLevel.WARNING
                self._maybe_shed(policy.warning_keep_fraction, now, entering=previous != self.level)
        elif rss_mb < policy.recovery_mb:
            if previous in (MemoryLevel.WARNING, MemoryLevel.CRITICAL):
                self.level = MemoryLevel.RECOVERY
                self._below_recovery_since = now
            elif previous == MemoryLevel.RECOVERY:
                if self._below_recovery_since is None:
                    self._below_recovery_since = now
                elif now - self._below_recovery_since >= policy.recovery_hold_s:
                    self.level = MemoryLevel.NORMAL
                    self.admission_floor = None
                    self._below_recovery_since = None
        elif previous == MemoryLevel.RECOVERY:
            # Back between recovery and warning: the hold starts again on the next low reading.
            self._below_recovery_since = None
        if self.level != previous:
            log.warning("memory level %s -> %s at %.0f MB RSS", previous, self.level, rss_mb)
        return self.level

    def _maybe_shed(self, keep_fraction: float, now: float, *, entering: bool) -> None:
        cooled = (
            self._last_shed_at is None or now - self._last_shed_at >= self.policy.shed_cooldown_s
        )
        if entering or cooled:
            self._last_shed_at = now
            self.shed(keep_fraction)

    def shed(self, keep_fraction: float) -> int:
        """Drop the lowest-rate non-whale txs so that about ``keep_fraction`` of txs remain."""
        txs = self.txs
        target_drop = len(txs) - int(len(txs) * keep_fraction)
        if target_drop <= 0:
            return 0
        protected = set(self.whales)
        top = heapq.nlargest(self.policy.protected_top_fee, txs.items(), key=_fee_key)
        protected.update(txid for txid, _record in top)
        candidates = heapq.nsmallest(target_drop + len(protected), txs.items(), key=_rate_key)
        dropped = 0
        floor = 0.0
        for txid, record in candidates:
            if dropped >= target_drop:
                break
            if txid in protected:
                continue
            del txs[txid]
            self.parents.pop(txid, None)
            dropped += 1
            floor = max(floor, record[2])
        self.shed_total += dropped
        self.shed_events += 1
        self.admission_floor = max(self.admission_floor or 0.0, floor)
        log.warning("shed %d low-fee txs (below %.3f sat/vB); %d remain", dropped, floor, len(txs))
        return dropped


def _fee_key(item: tuple[str, TxRecord]) -> int:
    fee = item[1][0]
    return fee if fee is not None else -1


def _rate_key(item: tuple[str, TxRecord]) -> float:
    return item[1][2]
