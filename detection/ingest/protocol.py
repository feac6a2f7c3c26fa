"""The one parser for mempool.space WebSocket frames (live client and replay share it).

A server frame is one JSON object whose top-level keys are message types (protocol.md A.3); each
key is handled on its own and unknown keys are ignored. The parser never raises on hostile input:
a frame that is not JSON or not an object is counted and dropped (``parse`` returns None); a
malformed key or transaction is counted by reason and skipped while the rest of the frame is kept.
Warnings are logged at most once per ``warn_interval`` seconds per reason.

Transactions are reduced to compact records so that a 300,000-tx mempool stays small and a frame
with thousands of ``added`` txs is cheap: only txid, fee, weight, effective fee rate and sigops
are pulled out (``TxRecord``), plus the output sum for the whale test. Only txs whose output sum
reaches the whale floor become a full ``WhaleTx``. Input values come from ``prevout`` when present
and are None otherwise (never guessed); a ``fee`` of null stays None.

Effective fee rate = ``effectiveFeePerVsize`` when given (package/CPFP-aware), else fee / vsize;
fee 0 is a valid rate 0. A tx with neither gets rate 0.0 in its record (it sorts last in the
projection) while its whale record keeps ``fee=None`` / ``effective_fee_rate=None``.
"""

from __future__ import annotations

import gc
import logging
import math
import time
from collections import Counter
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from detection.ingest.watch import EMPTY as EMPTY_WATCH_SET
from detection.ingest.watch import WatchSet
from detection.txshape import SATS_PER_BTC, TxInput, TxOutput, WhaleTx

log = logging.getLogger(__name__)

DEFAULT_WHALE_MIN_SATS = 100 * SATS_PER_BTC
MAX_TX_WEIGHT = 4_000_000
MAX_SATS = 21_000_000 * SATS_PER_BTC
MAX_SEQUENCE = 2**63
MAX_HEIGHT = 100_000_000
MAX_FEE_RATE = 1e9  # sat/vB; anything above is garbage, not a fee
MAX_MEMPOOL_BLOCKS = 16

# (fee or None, weight, effective fee rate sat/vB, sigops): the per-tx record the state keeps.
TxRecord = tuple[int | None, int, float, int]


class BlockInfo(NamedTuple):
    height: int
    hash: str
    time: int | None
    previous_hash: str | None


class TrackedInfo(NamedTuple):
    """One entry of a ``tracked-txs`` answer (the resync after a reconnect)."""

    confirmed: bool
    replaced_by: str | None
    position_block: int | None
    effective_rate: float | None


@dataclass(slots=True)
class ParsedFrame:
    """Everything usable in one server frame; empty containers mean "not in this frame"."""

    received_at: float
    sequence: int | None = None
    # mempool-transactions
    has_mempool_delta: bool = False
    added: list[tuple[str, TxRecord]] = field(default_factory=list)
    whales: dict[str, WhaleTx] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    mined: list[str] = field(default_factory=list)
    replaced: list[tuple[str, str]] = field(default_factory=list)  # (replaced, replacing)
    replacing_txs: dict[str, WhaleTx] = field(default_factory=dict)  # full `by` txs, any value
    spends: list[tuple[str, str]] = field(default_factory=list)  # (watched parent, child txid)
    parents: dict[str, list[str]] = field(default_factory=dict)  # added txid -> in-mempool parents
    # per-tx projection hints: txid -> position.block (added whales, txPosition, tracked-txs)
    positions: dict[str, int] = field(default_factory=dict)
    rate_updates: dict[str, float] = field(default_factory=dict)  # txid -> CPFP effective rate
    # blocks and summaries
    block: BlockInfo | None = None
    blocks: list[BlockInfo] = field(default_factory=list)
    mempool_blocks: list[dict[str, Any]] | None = None
    fees: dict[str, float] | None = None
    mempool_info: dict[str, float] | None = None
    # per-tx tracking answers
    tracked: dict[str, TrackedInfo] = field(default_factory=dict)
    tx_confirmed: list[str] = field(default_factory=list)
    tx_replaced: str | None = None
    pong: bool = False
    # `conversions` as sent (an object); detection.domain.prices.PriceBook judges each price
    conversions: dict[str, Any] | None = None

    @property
    def tx_count(self) -> int:
        return len(self.added)


def _is_txid(value: object) -> bool:
    return type(value) is str and len(value) == 64


def _is_count(value: object, upper: int) -> bool:
    return type(value) is int and 0 <= value <= upper


def _is_rate(value: object) -> bool:
    return (type(value) is float or type(value) is int) and 0 <= value <= MAX_FEE_RATE


def whale_from_esplora(
    tx: dict[str, Any],
    *,
    fee: int | None,
    weight: int,
    vsize: int,
    effective_rate: float | None,
) -> WhaleTx:
    """Build a full WhaleTx from an Esplora tx whose scalar fields were already validated.

    Raises ValueError/TypeError/KeyError on a malformed input or output (the caller counts it).
    """
    inputs = []
    for vin in tx["vin"]:
        prev_txid = vin.get("txid")
        prev_vout = vin.get("vout")
        if type(prev_txid) is not str or not _is_count(prev_vout, 2**32):
            raise ValueError("bad input outpoint")
        prevout = vin.get("prevout")
        value = address = None
        if type(prevout) is dict:
            raw_value = prevout.get("value")
            value = raw_value if _is_count(raw_value, MAX_SATS) else None
            raw_address = prevout.get("scriptpubkey_address")
            address = raw_address if type(raw_address) is str else None
        sequence = vin.get("sequence", 0xFFFFFFFF)
        inputs.append(
            TxInput(
                prev_txid=prev_txid,
                prev_vout=prev_vout,
                address=address,
                value=value,
                sequence=sequence if _is_count(sequence, 0xFFFFFFFF) else 0xFFFFFFFF,
                is_coinbase=vin.get("is_coinbase") is True,
            )
        )
    outputs = []
    for out in tx["vout"]:
        value = out["value"]
        if not _is_count(value, MAX_SATS):
            raise ValueError("bad output value")
        address = out.get("scriptpubkey_address")
        script_type = out.get("scriptpubkey_type")
        outputs.append(
            TxOutput(
                value=value,
                address=address if type(address) is str else None,
                script_type=script_type if type(script_type) is str else "",
            )
        )
    first_seen = tx.get("firstSeen")
    flags = tx.get("flags")
    return WhaleTx(
        txid=tx["txid"],
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        weight=weight,
        vsize=vsize,
        fee=fee,
        effective_fee_rate=effective_rate,
        first_seen=float(first_seen)
        if (type(first_seen) is int or type(first_seen) is float) and 0 <= first_seen < 2**40
        else None,
        flags=flags if _is_count(flags, 2**64 - 1) else 0,
    )


class FrameParser:
    """Parses frames into ``ParsedFrame`` and keeps the protocol counters.

    ``watch_txids`` may be set to a (live) set of txids whose children should be reported in
    ``ParsedFrame.spends`` (CPFP detection for pending whales); leave it empty for no cost.

    ``mempool_txids`` may be set to the (live) txids of the local mempool: an added tx spending
    one of them (or a tx earlier in the same frame) gets its in-mempool parents reported in
    ``ParsedFrame.parents``, which lets the projection build Core's ancestor packages.
    """

    def __init__(
        self,
        whale_min_sats: int = DEFAULT_WHALE_MIN_SATS,
        *,
        warn_interval: float = 10.0,
        clock: Any = time.monotonic,
    ) -> None:
        self.whale_min_sats = whale_min_sats
        self.warn_interval = warn_interval
        self._clock = clock
        self._last_warned: dict[str, float] = {}
        self.watch_txids: set[str] = set()
        # Watchlists (issue 21): a tx touching one of these addresses is followed like a whale.
        self.watch_set: WatchSet = EMPTY_WATCH_SET
        self.watch_hits = 0
        self.mempool_txids: Container[str] = ()
        self.frames = 0
        self.bytes = 0
        self.malformed_frames = 0
        self.malformed: Counter[str] = Counter()
        self.txs_parsed = 0
        self.whales_found = 0
        self.unknown_keys = 0
        self.last_sequence: int | None = None
        self.sequence_gaps = 0
        self.sequence_missed = 0
        self.sequence_resets = 0
        self.pongs = 0
        self._frame_flagged = False

    # -- bookkeeping ------------------------------------------------------------------------

    def _bad(self, reason: str, count: int = 1) -> None:
        self.malformed[reason] += count
        if not self._frame_flagged:
            self._frame_flagged = True
            self.malformed_frames += 1
        now = self._clock()
        if now - self._last_warned.get(reason, -math.inf) >= self.warn_interval:
            self._last_warned[reason] = now
            log.warning(
                "malformed mempool frame content (%s); %d of this kind so far",
                reason,
                self.malformed[reason],
            )

    @property
    def malformed_total(self) -> int:
        return sum(self.malformed.values())

    def reset_sequence(self) -> None:
        """Forget the sequence baseline (e.g. after switching server)."""
        self.last_sequence = None

    def _note_sequence(self, sequence: int) -> None:
        last = self.last_sequence
        self.last_sequence = sequence
        if last is None or sequence == last + 1:
            return
        if sequence > last + 1:
            self.sequence_gaps += 1
            self.sequence_missed += sequence - last - 1
            log.warning("mempool sequence gap: %d -> %d", last, sequence)
        else:
            # The server restarted (or we reconnected to another one): new baseline, not a gap.
            self.sequence_resets += 1

    # -- entry point ------------------------------------------------------------------------

    def parse(
        self, raw: str | bytes | bytearray | memoryview, received_at: float
    ) -> ParsedFrame | None:
        # A decoded frame is an acyclic tree of tens of thousands of containers; letting the
        # cyclic collector chase them (and then the whole mempool state in every full
        # collection they trigger) costs more than the parsing itself. Reference counting
        # frees them; the collector is paused only for the duration of this call.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._parse(raw, received_at)
        finally:
            if gc_was_enabled:
                gc.enable()

    def _parse(
        self, raw: str | bytes | bytearray | memoryview, received_at: float
    ) -> ParsedFrame | None:
        self.frames += 1
        self._frame_flagged = False
        try:
            self.bytes += len(raw)
            data = orjson.loads(raw)
        except (orjson.JSONDecodeError, TypeError):
            self._bad("not_json")
            return None
        if type(data) is not dict:
            self._bad("not_object")
            return None
        frame = ParsedFrame(received_at=received_at)
        for key, value in data.items():
            handler = _HANDLERS.get(key)
            if handler is None:
                self.unknown_keys += 1
                continue
            try:
                handler(self, value, frame)
            except Exception:  # noqa: BLE001 - a hostile value must never kill the reader
                self._bad(f"bad_{key}")
        del data  # free the decoded tree while the collector is still paused
        return frame

    # -- mempool-transactions ---------------------------------------------------------------

    def _on_mempool_transactions(self, value: Any, frame: ParsedFrame) -> None:
        if type(value) is not dict:
            self._bad("bad_mempool-transactions")
            return
        frame.has_mempool_delta = True
        sequence = value.get("sequence")
        if sequence is not None:
            if _is_count(sequence, MAX_SEQUENCE):
                frame.sequence = sequence
                self._note_sequence(sequence)
            else:
                self._bad("bad_sequence")
        # null means "none this time"; any other non-list (also a falsy one: {}, 0, "", false)
        # is garbage and must be counted, or a broken delta would pass for an empty one.
        added = value.get("added")
        if added is not None:
            if type(added) is list:
                if added:
                    self._parse_txs(added, frame)
            else:
                self._bad("bad_added")
        for key, target in (("removed", frame.removed), ("mined", frame.mined)):
            txids = value.get(key)
            if txids is None:
                continue
            if type(txids) is not list:
                self._bad(f"bad_{key}")
                continue
            good = [t for t in txids if type(t) is str and len(t) == 64]
            if len(good) != len(txids):
                self._bad(f"bad_{key}", len(txids) - len(good))
            target.extend(good)
        replaced = value.get("replaced")
        if replaced is not None:
            if type(replaced) is list:
                if replaced:
                    self._parse_replaced(replaced, frame)
            else:
                self._bad("bad_replaced")

    def _parse_txs(self, txs: list[Any], frame: ParsedFrame) -> None:
        """The hot loop: a few dict lookups and an output sum per tx, no objects for non-whales."""
        append = frame.added.append
        whale_min = self.whale_min_sats
        watch = self.watch_txids
        watched = self.watch_set.addresses  # a frozenset; empty costs one truth test per tx
        mempool = self.mempool_txids
        in_frame: set[str] = set()
        parents_of = frame.parents
        bad = 0
        for tx in txs:
            try:
                txid = tx["txid"]
                weight = tx["weight"]
                fee = tx.get("fee")
                rate = tx.get("effectiveFeePerVsize")
                sigops = tx.get("sigops", 0)
                value = 0
                vouts = tx["vout"]
                for out in vouts:
                    value += out["value"]
            except (KeyError, TypeError, AttributeError):
                bad += 1
                continue
            if not (
                type(txid) is str
                and len(txid) == 64
                and type(weight) is int
                and 0 < weight <= MAX_TX_WEIGHT
                and type(value) is int
                and 0 <= value <= MAX_SATS
            ):
                bad += 1
                continue
            vsize = None
            if not (type(fee) is int and 0 <= fee <= MAX_SATS):
                fee = None
            if type(rate) is float or type(rate) is int:
                if not 0 <= rate <= MAX_FEE_RATE:
                    rate = None
            elif rate is not None:
                rate = None
            if rate is None and fee is not None:
                vsize = tx.get("vsize")
                if type(vsize) is not int or vsize <= 0:
                    vsize = (weight + 3) // 4
                rate = fee / vsize
            if type(sigops) is not int or not 0 <= sigops <= 80_000:
                sigops = 0
            append((txid, (fee, weight, rate if rate is not None else 0.0, sigops)))
            # Watchlists (issue 21): detection.ingest.watch.touches, inlined into the loops every
            # tx goes through anyway (tests/ingest/test_ingest_watch.py holds the two alike).
            watching = watched and value < whale_min
            touched = False
            if watching:
                for out in vouts:
                    address = out.get("scriptpubkey_address")
                    if type(address) is str and address in watched:
                        touched = True
                        break
            vins = tx.get("vin")
            if type(vins) is list:
                for vin in vins:
                    if type(vin) is not dict:
                        continue
                    if watching and not touched:
                        prevout = vin.get("prevout")
                        if type(prevout) is dict:
                            address = prevout.get("scriptpubkey_address")
                            touched = type(address) is str and address in watched
                    parent = vin.get("txid")
                    if type(parent) is not str:
                        continue
                    if parent in mempool or parent in in_frame:
                        parents = parents_of.get(txid)
                        if parents is None:
                            parents_of[txid] = [parent]
                        elif parent not in parents:
                            parents.append(parent)
                    if watch and parent in watch:
                        frame.spends.append((parent, txid))
            in_frame.add(txid)
            if value >= whale_min:
                self._add_whale(tx, txid, fee, weight, vsize, rate, frame.whales, frame)
            elif touched:
                self.watch_hits += 1
                self._add_whale(tx, txid, fee, weight, vsize, rate, frame.whales, frame)
        self.txs_parsed += len(txs) - bad
        if bad:
            self._bad("bad_tx", bad)

    def _add_whale(
        self,
        tx: dict[str, Any],
        txid: str,
        fee: int | None,
        weight: int,
        vsize: int | None,
        rate: float | None,
        target: dict[str, WhaleTx],
        frame: ParsedFrame,
    ) -> WhaleTx | None:
        if vsize is None:
            vsize = tx.get("vsize")
            if type(vsize) is not int or vsize <= 0:
                vsize = (weight + 3) // 4
        try:
            whale = whale_from_esplora(
                tx,
                fee=fee,
                weight=weight,
                vsize=vsize,
                effective_rate=float(rate) if rate is not None else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            self._bad("bad_whale_tx")
            return None
        target[txid] = whale
        if target is frame.whales:
            self.whales_found += 1
            position = tx.get("position")
            if type(position) is dict and _is_count(position.get("block"), 1_000):
                frame.positions[txid] = position["block"]
        return whale

    def _parse_replaced(self, pairs: list[Any], frame: ParsedFrame) -> None:
        """RBF pairs. `by` is the full replacing tx (txid only in the mempool-txids style)."""
        added: dict[str, TxRecord] | None = None
        for pair in pairs:
            if type(pair) is not dict:
                self._bad("bad_replaced")
                continue
            old = pair.get("replaced")
            by = pair.get("by")
            new_txid = by.get("txid") if type(by) is dict else by
            if not (_is_txid(old) and _is_txid(new_txid)):
                self._bad("bad_replaced")
                continue
            frame.replaced.append((old, new_txid))
            if type(by) is not dict:
                continue
            if new_txid in frame.whales:
                frame.replacing_txs[new_txid] = frame.whales[new_txid]
                continue
            if added is None:
                added = dict(frame.added)
            if new_txid not in added:
                # Normally the replacement is in `added` too; when not, it still enters the state.
                self._parse_txs([by], frame)
                if frame.added and frame.added[-1][0] == new_txid:
                    added[new_txid] = frame.added[-1][1]
                if new_txid in frame.whales:
                    frame.replacing_txs[new_txid] = frame.whales[new_txid]
                    continue
            record = added.get(new_txid)
            if record is not None:
                # Full shape even for a non-whale: a whale's chain continues through it.
                fee, weight, rate, _sigops = record
                self._add_whale(by, new_txid, fee, weight, None, rate, frame.replacing_txs, frame)

    # -- blocks, summaries ------------------------------------------------------------------

    def _block_info(self, value: Any) -> BlockInfo | None:
        if type(value) is not dict:
            return None
        height = value.get("height")
        block_hash = value.get("id")
        timestamp = value.get("timestamp")
        previous = value.get("previousblockhash")
        if not (_is_count(height, MAX_HEIGHT) and _is_txid(block_hash)):
            return None
        return BlockInfo(
            height=height,
            hash=block_hash,
            time=timestamp if _is_count(timestamp, 2**40) else None,
            previous_hash=previous if _is_txid(previous) else None,
        )

    def _on_block(self, value: Any, frame: ParsedFrame) -> None:
        info = self._block_info(value)
        if info is None:
            self._bad("bad_block")
        else:
            frame.block = info

    def _on_blocks(self, value: Any, frame: ParsedFrame) -> None:
        if type(value) is not list:
            self._bad("bad_blocks")
            return
        for item in value[:100]:
            info = self._block_info(item)
            if info is None:
                self._bad("bad_blocks")
            else:
                frame.blocks.append(info)

    def _on_mempool_blocks(self, value: Any, frame: ParsedFrame) -> None:
        if type(value) is not list:
            self._bad("bad_mempool-blocks")
            return
        summaries = []
        for item in value[:MAX_MEMPOOL_BLOCKS]:
            if type(item) is not dict:
                self._bad("bad_mempool-blocks")
                return
            fee_range = item.get("feeRange")
            median = item.get("medianFee")
            vsize = item.get("blockVSize")
            if not (
                type(fee_range) is list
                and fee_range
                and len(fee_range) <= 32
                and all(_is_rate(r) for r in fee_range)
                and _is_rate(median)
                and (type(vsize) is float or type(vsize) is int)
                and vsize >= 0
            ):
                self._bad("bad_mempool-blocks")
                return
            n_tx = item.get("nTx")
            total_fees = item.get("totalFees")
            summaries.append(
                {
                    "blockVSize": float(vsize),
                    "nTx": n_tx if _is_count(n_tx, 10**9) else None,
                    "totalFees": total_fees if _is_count(total_fees, MAX_SATS) else None,
                    "medianFee": float(median),
                    "feeRange": [float(r) for r in fee_range],
                }
            )
        frame.mempool_blocks = summaries

    def _on_fees(self, value: Any, frame: ParsedFrame) -> None:
        if type(value) is not dict:
            self._bad("bad_fees")
            return
        fees = {}
        for key in _FEE_KEYS:
            rate = value.get(key)
            if _is_rate(rate):
                fees[key] = float(rate)
            elif rate is not None:
                # The good estimates are still usable; the bad one must not vanish unseen.
                self._bad("bad_fees")
        frame.fees = fees

    def _on_mempool_info(self, value: Any, frame: ParsedFrame) -> None:
        if type(value) is not dict:
            self._bad("bad_mempoolInfo")
            return
        info = {}
        for key in _MEMPOOL_INFO_KEYS:
            item = value.get(key)
            if (type(item) is int or type(item) is float) and 0 <= item < 1e18:
                info[key] = item
            elif item is not None:
                self._bad("bad_mempoolInfo")
        frame.mempool_info = info

    # -- per-tx tracking --------------------------------------------------------------------

    def _on_tracked_txs(self, value: Any, frame: ParsedFrame) -> None:
        if type(value) is not dict:
            self._bad("bad_tracked-txs")
            return
        for txid, info in value.items():
            if not (_is_txid(txid) and type(info) is dict):
                self._bad("bad_tracked-txs")
                continue
            replaced_by = info.get("replacedBy")
            position = info.get("position")
            block = position.get("block") if type(position) is dict else None
            cpfp = info.get("cpfp")
            rate = cpfp.get("effectiveFeePerVsize") if type(cpfp) is dict else None
            tracked = TrackedInfo(
                confirmed=info.get("confirmed") is True,
                replaced_by=replaced_by if _is_txid(replaced_by) else None,
                position_block=block if _is_count(block, 1_000) else None,
                effective_rate=float(rate) if _is_rate(rate) else None,
            )
            frame.tracked[txid] = tracked
            if tracked.position_block is not None:
                frame.positions[txid] = tracked.position_block
            if tracked.effective_rate is not None:
                frame.rate_updates[txid] = tracked.effective_rate

    def _on_tx_position(self, value: Any, frame: ParsedFrame) -> None:
        if type(value) is not dict:
            self._bad("bad_txPosition")
            return
        txid = value.get("txid")
        position = value.get("position")
        block = position.get("block") if type(position) is dict else None
        if not (_is_txid(txid) and _is_count(block, 1_000)):
            self._bad("bad_txPosition")
            return
        frame.positions[txid] = block
        cpfp = value.get("cpfp")
        if type(cpfp) is dict and _is_rate(cpfp.get("effectiveFeePerVsize")):
            frame.rate_updates[txid] = float(cpfp["effectiveFeePerVsize"])

    def _on_tx_confirmed(self, value: Any, frame: ParsedFrame) -> None:
        if _is_txid(value):
            frame.tx_confirmed.append(value)
        else:
            self._bad("bad_txConfirmed")

    def _on_tx_replaced(self, value: Any, frame: ParsedFrame) -> None:
        txid = value.get("txid") if type(value) is dict else None
        if _is_txid(txid):
            frame.tx_replaced = txid
        else:
            self._bad("bad_txReplaced")

    def _on_conversions(self, value: Any, frame: ParsedFrame) -> None:
        if type(value) is not dict:
            self._bad("bad_conversions")
            return
        frame.conversions = value

    def _on_pong(self, value: Any, frame: ParsedFrame) -> None:
        frame.pong = True
        self.pongs += 1


_FEE_KEYS = ("fastestFee", "halfHourFee", "hourFee", "economyFee", "minimumFee")
_MEMPOOL_INFO_KEYS = (
    "size",
    "bytes",
    "usage",
    "total_fee",
    "maxmempool",
    "mempoolminfee",
    "minrelaytxfee",
)

_HANDLERS = {
    "mempool-transactions": FrameParser._on_mempool_transactions,
    "block": FrameParser._on_block,
    "blocks": FrameParser._on_blocks,
    "mempool-blocks": FrameParser._on_mempool_blocks,
    "fees": FrameParser._on_fees,
    "mempoolInfo": FrameParser._on_mempool_info,
    "tracked-txs": FrameParser._on_tracked_txs,
    "txPosition": FrameParser._on_tx_position,
    "txConfirmed": FrameParser._on_tx_confirmed,
    "txReplaced": FrameParser._on_tx_replaced,
    "pong": FrameParser._on_pong,
    "conversions": FrameParser._on_conversions,
}
