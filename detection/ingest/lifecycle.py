"""Whale lifecycle: turns parsed frames into events for whales only.

This module's event dict is **the contract with the Celery task consumer** (typed and checked in
detection.ingest.events, by both sides). Every event is a plain
JSON-able dict with all of these keys (null when not relevant):

``event_id``         str, uuid4 made once when the event is created (stable across retries:
                     use it as the idempotency key / webhook id)
``kind``             "seen" | "updated" | "replaced" | "dropped" | "confirmed" | "reorged"
``txid``             the tx this event is about (for "replaced": the replacing tx)
``chain_txid``       first txid of the RBF chain: the alert's identity across replacements
``seq``              per-chain counter, 1 for "seen", +1 per event (unique per chain)
``observed_at``      epoch seconds (float) when the event was made
``frame_received_at`` epoch seconds (float) when the frame that caused it arrived (latency)
``source``           the source spec, e.g. "wss://mempool.space/api/v1/ws", "replay:…"
``tx``               ``WhaleTx.to_json()`` of the current tx (``detection.txshape``), or null when
                     unknown (a replacement learnt only from a ``tracked-txs`` answer; when
                     its tx is fetched later, a second "replaced" event for the same pair
                     carries it)
``block``            {"height", "hash", "time"} for "confirmed" (fields may be null when a
                     resync answer said confirmed without saying where: look it up by txid) and
                     for "reorged" (the orphaned block)
``replaced_txid``    "replaced": the txid that left the mempool
``replacing_txid``   "replaced": the txid that continues the chain (= ``txid``)
``reasons``          "updated": subset of ["cpfp", "fee", "position"]; "dropped": ["removed"];
                     otherwise []
``changes``          "updated"/"replaced": {"effective_fee_rate": [old, new],
                     "projected_block": [old, new], "fee": [old, new]} (only what changed)
``prices``           the latest fiat prices the source gave, {"USD": ["69880", received_at], ...}
                     (``detection.domain.prices.PriceBook.snapshot``); {} before any; the
                     recorder uses only those fresh at the whale's detection
``projection``       {"projected_block" (0 = next), "fee_percentile" (vsize-weighted share of the
                     mempool paying less, 0..1; null while the local mempool is incomplete),
                     "tip_height", "next_block_median_fee_rate" (block 0's ``medianFee``),
                     "next_block_floor_fee_rate" (block 0's ``feeRange[0]``),
                     "purge_floor_fee_rate" (``mempoolminfee`` in sat/vB), "made_at" (epoch of
                     the information used), "basis": "position" | "mempool-blocks" | "local"}
                     or null when nothing is known yet; fields inside may be null

Kinds: ``seen`` (first sighting), ``updated`` (CPFP / fee / projected block changed),
``replaced`` (RBF: the chain continues with the replacing txid), ``dropped`` (removed from the
mempool for a non-block reason and no replacement learnt within ``removal_grace_s``: mempool.space
may announce a replacement after the removal), ``confirmed`` (in ``mined`` with the block frame,
``txConfirmed``, a ``tracked-txs`` "confirmed" in a frame that carries the block, a block scan or
a REST check by the resync: ``detection.ingest.blockscan`` / ``resync``), ``reorged`` (its block
was orphaned: back to pending; a later "confirmed" follows when it is mined again).

One basis per whale: a whale the server tracks (it sent a ``position`` for it, in ``tracked-txs``
or ``txPosition``) keeps the server's position until it is replaced or confirmed; the others use
our local projection, or the ``mempool-blocks`` fee ranges until a projection exists. A new
``mempool-blocks`` frame never moves a tracked whale to another basis.

Block heights and hashes of the last ``history`` heights are kept to spot reorgs: a different hash
at a height already seen orphans that block and every later one.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from bisect import bisect_right
from collections.abc import Callable, Iterable
from typing import Any

from detection.domain.prices import PriceBook
from detection.domain.urgency import purge_floor_from_mempoolminfee
from detection.ingest.events import WhaleEventPayload, check_event
from detection.ingest.projection import Projection
from detection.ingest.protocol import BlockInfo, ParsedFrame, TxRecord
from detection.txshape import WhaleTx

log = logging.getLogger(__name__)

Event = dict[str, Any]

PENDING = "pending"
CONFIRMED = "confirmed"


@dataclasses.dataclass(slots=True)
class Chain:
    chain_txid: str
    txid: str
    whale: WhaleTx | None
    seq: int = 0
    status: str = PENDING
    effective_rate: float | None = None
    server_position: int | None = None
    server_position_at: float | None = None
    projected_block: int | None = None
    block: BlockInfo | None = None


# The fee percentile is withheld while the local mempool holds fewer (or more) txs than this share
# of the count the server reports: after a start or reconnect it is only part of the mempool.
PERCENTILE_SIZE_TOLERANCE = 0.05
REPLACED_WITHOUT_TX_MAX = 1_000


@dataclasses.dataclass(frozen=True, slots=True)
class FeeReferences:
    """The market rates a whale is judged against, each by its name (sat/vB)."""

    next_block_median: float | None = None  # mempool-blocks[0].medianFee
    next_block_floor: float | None = None  # mempool-blocks[0].feeRange[0]: its cheapest tx
    purge_floor: float | None = None  # mempoolminfee: below it a full mempool evicts first


def block_from_mempool_blocks(rate: float, mempool_blocks: list[dict[str, Any]]) -> int | None:
    """Which projected block a tx paying ``rate`` lands in, from the server's ``mempool-blocks``
    (the frontend's rule: the first block whose fee range reaches down to the rate)."""
    if not mempool_blocks:
        return None
    for index, summary in enumerate(mempool_blocks):
        fee_range = summary["feeRange"]
        if fee_range and rate >= fee_range[0]:
            return index
    return len(mempool_blocks) - 1


class WhaleTracker:
    def __init__(
        self,
        *,
        source: str,
        clock: Callable[[], float] = time.time,
        removal_grace_s: float = 10.0,
        removal_grace_updates: int = 10,
        history: int = 20,
        dropped_keep_s: float = 14 * 86_400.0,
        dropped_keep_max: int = 10_000,
    ) -> None:
        self.source = source
        self.clock = clock
        self.removal_grace_s = removal_grace_s
        # mempool.space matches a replacement to a removal over its last 10 mempool updates,
        # which can take longer than any fixed number of seconds under load.
        self.removal_grace_updates = removal_grace_updates
        self.mempool_updates = 0
        # Dropped chains, kept so a later `mined`, replacement or re-broadcast continues them.
        self.dropped: dict[str, Chain] = {}
        self.dropped_at: dict[str, float] = {}
        self.dropped_keep_s = dropped_keep_s
        self.dropped_keep_max = dropped_keep_max
        self.reopened = 0
        self.history = history
        self.pending: dict[str, Chain] = {}  # current txid -> chain
        self.confirmed: dict[str, Chain] = {}  # txid -> chain, kept for `history` heights
        self.removal_pending: dict[str, tuple[float, int]] = {}  # txid -> (when, update count)
        self.hashes: dict[int, str] = {}  # height -> hash, last `history` heights
        self.tip: BlockInfo | None = None
        self.last_block: BlockInfo | None = None
        self.last_block_at: float | None = None
        self._last_block_mined = True
        self._awaiting_block: list[str] = []  # mined txids that arrived before their block
        self.mempool_blocks: list[dict[str, Any]] | None = None
        self.mempool_blocks_at: float | None = None
        self.projection: Projection | None = None
        self.mempool_info: dict[str, float] = {}
        self.reorgs = 0
        self.events_made = 0
        self.unattributed_tx_replaced = 0
        self.block_only_whales = 0  # whales first learnt of from a block scan
        # Chains replaced without the replacing tx (a resync answer's replacedBy): replacing
        # txid -> (replaced txid, replaced whale, its rate), so a tx fetched later completes
        # the replacement as if it had come with it.
        self.replaced_without_tx: dict[str, tuple[str, WhaleTx | None, float | None]] = {}
        # Resync (detection.ingest.resync): pending txids a tracked-txs answer vouched for since
        # the last (re)connect, and "confirmed" answers not trusted (no block in the frame).
        self.resync_mentions: set[str] = set()
        # Blocks of a new branch found through previousblockhash, (height, hash): the block
        # follower fetches them to walk back to where the chains meet, and rescans them.
        self.walk_backs: list[tuple[int, str]] = []
        self.untrusted_confirmations = 0
        self.prices = PriceBook()

    # -- public -----------------------------------------------------------------------------

    def pending_txids(self) -> list[str]:
        """Txids to resynchronise after a reconnect (``track-txs``)."""
        return list(self.pending)

    def handle(self, frame: ParsedFrame) -> list[Event]:
        events: list[Event] = []
        at = frame.received_at
        if frame.conversions is not None:
            # Before the whales of the same frame, so an init frame's price applies to them.
            self.prices.update(frame.conversions, at)
        for info in sorted(frame.blocks, key=lambda b: b.height):
            self._note_block(info, at, events, announce=False)
        if frame.block is not None:
            self._note_block(frame.block, at, events, announce=True)
        if frame.mempool_blocks is not None:
            self.mempool_blocks = frame.mempool_blocks
            self.mempool_blocks_at = at
        if frame.mempool_info:
            self.mempool_info = frame.mempool_info
        records = self._records_for(frame)
        for old, new in frame.replaced:
            self._replace(old, new, frame.replacing_txs.get(new), records.get(new), at, events)
        for txid, whale in frame.whales.items():
            self._see(txid, whale, records.get(txid), frame.positions.get(txid), at, events)
        for parent, child in frame.spends:
            self._cpfp(parent, records.get(child), at, events)
        for txid, block in frame.positions.items():
            chain = self.pending.get(txid)
            if chain is not None:
                chain.server_position = block
                chain.server_position_at = at
        if frame.block is not None:
            # A position from before the new block is one block off: keep only the positions
            # the server re-sent with the block (it does for the txs it tracks).
            for chain in self.pending.values():
                if chain.server_position_at is not None and chain.server_position_at < at:
                    chain.server_position = chain.server_position_at = None
        for txid, rate in frame.rate_updates.items():
            chain = self.pending.get(txid)
            if chain is not None:
                self._set_rate(chain, rate, "cpfp", at, events)
        for txid, info in frame.tracked.items():
            if info.replaced_by is not None:
                self.resync_mentions.add(txid)
                self._replace(txid, info.replaced_by, None, None, at, events)
            elif info.confirmed:
                # Trusted only beside the block it was mined in: servers before v3.4 answer
                # "confirmed" for any txid they no longer hold (evicted ones too). Otherwise
                # the resync checks it over REST (detection.ingest.resync).
                if frame.block is not None:
                    self._confirm([txid], frame.block, at, events)
                else:
                    self.untrusted_confirmations += 1
            else:
                self.resync_mentions.add(txid)  # still in the server's mempool
        if frame.has_mempool_delta:
            self.mempool_updates += 1
        if frame.removed:
            for txid in frame.removed:
                if txid in self.pending:
                    self.removal_pending.setdefault(txid, (at, self.mempool_updates))
        if frame.mined or frame.tx_confirmed:
            block = frame.block
            if block is None and not self._last_block_mined:
                block = self.last_block
            if block is None:
                self._awaiting_block.extend(t for t in frame.mined if t in self.pending)
                self._awaiting_block.extend(t for t in frame.tx_confirmed if t in self.pending)
            else:
                self._confirm(frame.mined, block, at, events)
                self._confirm(frame.tx_confirmed, block, at, events)
                if frame.mined:
                    self._last_block_mined = True
        if frame.tx_replaced is not None:
            # txReplaced answers `track-tx` (one tx per connection), which this client never
            # sends; without the replaced txid it cannot be attributed.
            self.unattributed_tx_replaced += 1
        self._expire_removals(at, events)
        if frame.mempool_blocks is not None or frame.positions:
            self._check_positions(at, events)
        return events

    def on_projection(self, projection: Projection, received_at: float) -> list[Event]:
        """A new local projection: emit position changes of pending whales."""
        self.projection = projection
        events: list[Event] = []
        self._check_positions(received_at, events)
        return events

    def expire(self, now: float) -> list[Event]:
        """Turn removals older than the grace period into "dropped" (call when idle too)."""
        events: list[Event] = []
        self._expire_removals(now, events)
        return events

    def block_scanned(
        self,
        block: BlockInfo,
        known: Iterable[str],
        unseen: dict[str, WhaleTx],
        at: float,
    ) -> list[Event]:
        """The whales a block scan found in ``block``: pending ones are confirmed there, and a
        whale never seen before starts a chain whose first event is "confirmed" (recorded with
        ``seen_in_mempool = false``). A scan of a block no longer on our chain changes nothing."""
        events: list[Event] = []
        if self.hashes.get(block.height, block.hash) != block.hash:
            return events
        self._confirm(
            [t for t in known if t in self.pending or t in self.dropped], block, at, events
        )
        for txid, whale in unseen.items():
            if txid in self.pending:
                self._confirm([txid], block, at, events)
                continue
            if txid in self.confirmed:
                continue
            chain = Chain(chain_txid=txid, txid=txid, whale=whale, status=CONFIRMED, block=block)
            self.confirmed[txid] = chain
            self.block_only_whales += 1
            events.append(self._event(chain, "confirmed", at, block=_block_json(block)))
        return events

    def resolve_confirmed(self, txid: str, block: BlockInfo, at: float) -> list[Event]:
        """A resync check found a pending whale mined in ``block``."""
        events: list[Event] = []
        self._confirm([txid], block, at, events)
        return events

    def resolve_replaced(
        self, txid: str, new_txid: str, whale: WhaleTx | None, at: float
    ) -> list[Event]:
        """A resync check found a pending whale's first input spent by ``new_txid``."""
        events: list[Event] = []
        self._replace(txid, new_txid, whale, None, at, events)
        return events

    def resolve_dropped(self, txid: str, at: float, reason: str = "removed") -> list[Event]:
        """A pending whale the server no longer has and nothing spends: dropped."""
        events: list[Event] = []
        self.removal_pending.pop(txid, None)
        chain = self.pending.pop(txid, None)
        if chain is not None:
            self._drop(chain, at, reason, events)
        return events

    def orphan_from(
        self,
        height: int,
        new_hash: str,
        at: float,
        events: list[Event] | None = None,
        *,
        only: bool = False,
    ) -> list[Event]:
        """Our block at ``height`` (and every later one, unless ``only``) is not on the best
        chain, whose block there is ``new_hash``: reorg the whales confirmed in them."""
        events = [] if events is None else events
        self._reorg(height, at, events, only=only)
        self.hashes[height] = new_hash
        return events

    def is_known(self, txid: str) -> bool:
        return txid in self.pending or txid in self.confirmed or txid in self.dropped

    # -- projection -------------------------------------------------------------------------

    def fee_references(self) -> FeeReferences:
        """Block 0's median and floor from the server's ``mempool-blocks`` (else from our
        projection) and the purge floor from ``mempoolInfo``."""
        median = floor = None
        if self.mempool_blocks:
            median = self.mempool_blocks[0]["medianFee"]
            floor = self.mempool_blocks[0]["feeRange"][0]
        elif self.projection is not None:
            median = self.projection.median_fee_rate
            floor = self.projection.next_block_floor_fee_rate
        purge = purge_floor_from_mempoolminfee(self.mempool_info.get("mempoolminfee"))
        return FeeReferences(median, floor, purge)

    def local_state_complete(self) -> bool:
        """Whether the last projection saw (within 5 %) as many txs as the server reports. A
        source that never reports ``mempoolInfo`` (replay, synthetic) is taken as complete."""
        projection = self.projection
        if projection is None:
            return False
        size = self.mempool_info.get("size")
        if size is None:
            return True
        return abs(projection.tx_count - size) <= PERCENTILE_SIZE_TOLERANCE * size

    def projection_for(self, chain: Chain) -> dict[str, Any] | None:
        rate = chain.effective_rate
        projection = self.projection
        basis = made_at = block = None
        if chain.server_position is not None:
            basis, block, made_at = "position", chain.server_position, chain.server_position_at
        elif projection is not None:
            basis, made_at = "local", projection.made_at
            block = projection.block_index.get(chain.txid)
            if block is None and rate is not None:
                block = projection.block_for_rate(rate)
        elif self.mempool_blocks and rate is not None:
            basis, made_at = "mempool-blocks", self.mempool_blocks_at
            block = block_from_mempool_blocks(rate, self.mempool_blocks)
        if basis is None:
            return None
        references = self.fee_references()
        tip_height = self.tip.height if self.tip else None
        if tip_height is None and projection is not None:
            tip_height = projection.tip_height
        return {
            "projected_block": block,
            "fee_percentile": (
                projection.fee_percentile(rate)
                if projection is not None and rate is not None and self.local_state_complete()
                else None
            ),
            "tip_height": tip_height,
            "next_block_median_fee_rate": references.next_block_median,
            "next_block_floor_fee_rate": references.next_block_floor,
            "purge_floor_fee_rate": references.purge_floor,
            "made_at": made_at,
            "basis": basis,
        }

    def _check_positions(self, at: float, events: list[Event]) -> None:
        for chain in list(self.pending.values()):
            projection = self.projection_for(chain)
            block = projection["projected_block"] if projection else None
            if block is None or block == chain.projected_block:
                continue
            old = chain.projected_block
            chain.projected_block = block
            if old is not None:
                events.append(
                    self._event(
                        chain,
                        "updated",
                        at,
                        reasons=["position"],
                        changes={"projected_block": [old, block]},
                        projection=projection,
                    )
                )

    # -- transitions ------------------------------------------------------------------------

    @staticmethod
    def _records_for(frame: ParsedFrame) -> dict[str, TxRecord]:
        """Compact records of the few txs the tracker needs from this frame."""
        wanted = set(frame.whales)
        wanted.update(new for _old, new in frame.replaced)
        wanted.update(child for _parent, child in frame.spends)
        if not wanted:
            return {}
        return {txid: record for txid, record in frame.added if txid in wanted}

    def _see(
        self,
        txid: str,
        whale: WhaleTx,
        record: TxRecord | None,
        position: int | None,
        at: float,
        events: list[Event],
    ) -> None:
        chain = self.pending.get(txid)
        if chain is not None:
            if whale.effective_fee_rate is not None:
                self._set_rate(chain, whale.effective_fee_rate, "fee", at, events)
            return
        if txid in self.confirmed:
            return
        chain = self._reopen(txid)
        if chain is not None:
            # Re-broadcast after a drop: the same chain goes on ("seen" at its next sequence).
            chain.whale = whale
            chain.effective_rate = whale.best_fee_rate
            events.append(self._event(chain, "seen", at, projection=self.projection_for(chain)))
            return
        chain = Chain(chain_txid=txid, txid=txid, whale=whale)
        chain.effective_rate = whale.best_fee_rate
        if position is not None:
            chain.server_position, chain.server_position_at = position, at
        self.pending[txid] = chain
        projection = self.projection_for(chain)
        chain.projected_block = projection["projected_block"] if projection else None
        events.append(self._event(chain, "seen", at, projection=projection))

    def _replace(
        self,
        old: str,
        new: str,
        whale: WhaleTx | None,
        record: TxRecord | None,
        at: float,
        events: list[Event],
    ) -> None:
        if (
            whale is not None
            and old not in self.pending
            and self._fill_replacement(old, new, whale, at, events)
        ):
            return
        if old not in self.pending:
            self._reopen(old)  # a replacement announced after the drop: the chain goes on
        chain = self.pending.pop(old, None)
        if chain is None:
            return
        self.removal_pending.pop(old, None)
        # The replacing tx may already be followed as its own whale: the older chain wins,
        # the newer one is folded into it (and lends its tx when the caller has none).
        folded = self.pending.pop(new, None)
        if whale is None and folded is not None:
            whale = folded.whale
        changes: dict[str, list[Any]] = {}
        replaced_whale = chain.whale
        old_fee = chain.whale.fee if chain.whale else None
        old_rate = chain.effective_rate
        chain.txid = new
        chain.whale = whale
        chain.server_position = None
        if whale is not None:
            chain.effective_rate = whale.best_fee_rate
            if whale.fee != old_fee:
                changes["fee"] = [old_fee, whale.fee]
        elif record is not None:
            chain.effective_rate = record[2]
        if chain.effective_rate != old_rate:
            changes["effective_fee_rate"] = [old_rate, chain.effective_rate]
        self.pending[new] = chain
        if whale is None:
            self._note_replaced_without_tx(new, old, replaced_whale, old_rate)
        self._replaced_event(chain, old, new, changes, at, events)

    def _replaced_event(
        self,
        chain: Chain,
        old: str,
        new: str,
        changes: dict[str, list[Any]],
        at: float,
        events: list[Event],
    ) -> None:
        projection = self.projection_for(chain)
        chain.projected_block = projection["projected_block"] if projection else None
        events.append(
            self._event(
                chain,
                "replaced",
                at,
                replaced_txid=old,
                replacing_txid=new,
                changes=changes,
                projection=projection,
            )
        )

    def _note_replaced_without_tx(
        self, new: str, old: str, replaced_whale: WhaleTx | None, old_rate: float | None
    ) -> None:
        for txid in [t for t in self.replaced_without_tx if t not in self.pending]:
            del self.replaced_without_tx[txid]  # the chain moved on: no fill is wanted
        self.replaced_without_tx[new] = (old, replaced_whale, old_rate)
        while len(self.replaced_without_tx) > REPLACED_WITHOUT_TX_MAX:
            del self.replaced_without_tx[next(iter(self.replaced_without_tx))]

    def _fill_replacement(
        self, old: str, new: str, whale: WhaleTx, at: float, events: list[Event]
    ) -> bool:
        """The tx of a replacement made without it arrived: a "replaced" event with the tx,
        its changes against the replaced whale, as if it had come with the replacement."""
        awaited = self.replaced_without_tx.pop(new, None)
        chain = self.pending.get(new)
        if awaited is None or awaited[0] != old or chain is None or chain.whale is not None:
            return False  # the chain moved on (confirmed, replaced again, ...): nothing to fill
        _old, replaced_whale, old_rate = awaited
        changes: dict[str, list[Any]] = {}
        old_fee = replaced_whale.fee if replaced_whale else None
        chain.whale = whale
        chain.effective_rate = whale.best_fee_rate
        if whale.fee != old_fee:
            changes["fee"] = [old_fee, whale.fee]
        if chain.effective_rate != old_rate:
            changes["effective_fee_rate"] = [old_rate, chain.effective_rate]
        self._replaced_event(chain, old, new, changes, at, events)
        return True

    def _cpfp(self, parent: str, child: TxRecord | None, at: float, events: list[Event]) -> None:
        chain = self.pending.get(parent)
        if chain is None or child is None or chain.whale is None or chain.whale.fee is None:
            return
        child_fee, child_weight, child_rate, _sigops = child
        own_rate = chain.whale.fee_rate or 0.0
        if child_fee is None or child_rate <= own_rate:
            return
        package_rate = (chain.whale.fee + child_fee) / (chain.whale.vsize + (child_weight + 3) // 4)
        if package_rate > (chain.effective_rate or 0.0):
            self._set_rate(chain, package_rate, "cpfp", at, events)

    def _set_rate(
        self, chain: Chain, rate: float, reason: str, at: float, events: list[Event]
    ) -> None:
        old = chain.effective_rate
        if old is not None and abs(old - rate) < 1e-9:
            return
        chain.effective_rate = rate
        if chain.whale is not None:
            chain.whale = dataclasses.replace(chain.whale, effective_fee_rate=rate)
        projection = self.projection_for(chain)
        changes: dict[str, list[Any]] = {"effective_fee_rate": [old, rate]}
        block = projection["projected_block"] if projection else None
        if block is not None and block != chain.projected_block:
            changes["projected_block"] = [chain.projected_block, block]
            chain.projected_block = block
        events.append(
            self._event(
                chain, "updated", at, reasons=[reason], changes=changes, projection=projection
            )
        )

    def _confirm(
        self, txids: Iterable[str], block: BlockInfo | None, at: float, events: list[Event]
    ) -> None:
        for txid in txids:
            chain = self.pending.pop(txid, None)
            if chain is None and txid in self.dropped:
                chain = self._reopen(txid)
                self.pending.pop(txid, None)
            if chain is None:
                continue
            self.removal_pending.pop(txid, None)
            chain.status = CONFIRMED
            chain.block = block
            self.confirmed[txid] = chain
            events.append(self._event(chain, "confirmed", at, block=_block_json(block)))

    def _note_block(
        self, info: BlockInfo, at: float, events: list[Event], *, announce: bool
    ) -> None:
        known = self.hashes.get(info.height)
        if known == info.hash:
            return
        if known is not None:
            self._reorg(info.height, at, events)
        parent = self.hashes.get(info.height - 1)
        if info.previous_hash is not None and parent is not None and parent != info.previous_hash:
            # The new block builds on another parent than the one we hold. The block follower
            # checks that parent over REST before anything is orphaned (a bad frame must not
            # reorg real confirmations), then walks back to where the chains meet.
            self.walk_backs.append((info.height - 1, info.previous_hash))
        self.hashes[info.height] = info.hash
        if self.tip is None or info.height >= self.tip.height:
            self.tip = info
        for height in [h for h in self.hashes if h <= info.height - self.history]:
            del self.hashes[height]
        for txid in [
            t
            for t, c in self.confirmed.items()
            if c.block is None or c.block.height <= info.height - self.history
        ]:
            del self.confirmed[txid]
        if announce:
            self.last_block = info
            self.last_block_at = at
            self._last_block_mined = False
            if self._awaiting_block:
                waiting, self._awaiting_block = self._awaiting_block, []
                self._confirm(waiting, info, at, events)
                self._last_block_mined = True

    def _reorg(self, height: int, at: float, events: list[Event], *, only: bool = False) -> None:
        """A different block at ``height``: it and every later block we knew are orphaned (only
        that one with ``only``: a walk-back step below blocks already replaced)."""
        self.reorgs += 1
        orphaned = {
            h: self.hashes.pop(h)
            for h in sorted(self.hashes)
            if h == height or (h > height and not only)
        }
        log.warning("reorg at height %d: orphaned %s", height, orphaned)
        for txid, chain in list(self.confirmed.items()):
            block = chain.block
            if block is not None and orphaned.get(block.height) == block.hash:
                del self.confirmed[txid]
                chain.status = PENDING
                chain.block = None
                self.pending[txid] = chain
                events.append(self._event(chain, "reorged", at, block=_block_json(block)))
        if self.tip is not None and self.tip.height >= height and not only:
            remaining = sorted(self.hashes)
            below = remaining[: bisect_right(remaining, height - 1)]
            self.tip = BlockInfo(below[-1], self.hashes[below[-1]], None, None) if below else None

    def _expire_removals(self, now: float, events: list[Event]) -> None:
        if self.dropped:
            self._forget_old_drops(now)
        if not self.removal_pending:
            return
        for txid, (removed_at, updates_then) in list(self.removal_pending.items()):
            waited = now - removed_at
            updates = self.mempool_updates - updates_then
            if waited < self.removal_grace_s:
                continue
            # Enough mempool updates for a late replacement to have been announced, or (a
            # stalled feed, or the heartbeat's call) long enough anyway.
            if updates < self.removal_grace_updates and waited < 12 * self.removal_grace_s:
                continue
            del self.removal_pending[txid]
            chain = self.pending.pop(txid, None)
            if chain is not None:
                self._drop(chain, now, "removed", events)

    def _drop(self, chain: Chain, at: float, reason: str, events: list[Event]) -> None:
        chain.status = "dropped"
        events.append(self._event(chain, "dropped", at, reasons=[reason]))
        self.dropped[chain.txid] = chain
        self.dropped_at[chain.txid] = at
        while len(self.dropped) > self.dropped_keep_max:
            oldest = next(iter(self.dropped))
            del self.dropped[oldest]
            self.dropped_at.pop(oldest, None)

    def _forget_old_drops(self, now: float) -> None:
        for txid, at in list(self.dropped_at.items()):
            if now - at < self.dropped_keep_s:
                break  # insertion order is drop order
            del self.dropped_at[txid]
            self.dropped.pop(txid, None)

    def _reopen(self, txid: str) -> Chain | None:
        """A dropped chain back to pending (mined, replaced or re-broadcast after all)."""
        chain = self.dropped.pop(txid, None)
        if chain is None:
            return None
        self.dropped_at.pop(txid, None)
        chain.status = PENDING
        self.pending[txid] = chain
        self.reopened += 1
        return chain

    # -- event construction -----------------------------------------------------------------

    def _event(
        self,
        chain: Chain,
        kind: str,
        frame_received_at: float,
        *,
        block: dict[str, Any] | None = None,
        replaced_txid: str | None = None,
        replacing_txid: str | None = None,
        reasons: list[str] | None = None,
        changes: dict[str, list[Any]] | None = None,
        projection: dict[str, Any] | None = None,
    ) -> Event:
        chain.seq += 1
        self.events_made += 1
        if projection is None and kind in ("updated", "confirmed", "reorged", "dropped"):
            projection = self.projection_for(chain) if chain.status == PENDING else None
        event: WhaleEventPayload = {
            "event_id": str(uuid.uuid4()),
            "kind": kind,
            "txid": chain.txid,
            "chain_txid": chain.chain_txid,
            "seq": chain.seq,
            "observed_at": self.clock(),
            "frame_received_at": frame_received_at,
            "source": self.source,
            "tx": chain.whale.to_json() if chain.whale is not None else None,
            "block": block,
            "replaced_txid": replaced_txid,
            "replacing_txid": replacing_txid,
            "reasons": reasons or [],
            "changes": changes or {},
            "projection": projection,
            "prices": self.prices.snapshot(),
        }
        check_event(event)  # the consumer's own check: a bad event stops here, not in a worker
        return event


def _block_json(block: BlockInfo | None) -> dict[str, Any]:
    if block is None:
        return {"height": None, "hash": None, "time": None}
    return {"height": block.height, "hash": block.hash, "time": block.time}
