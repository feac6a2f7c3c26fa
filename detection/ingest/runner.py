"""The asyncio ingest pipeline, still Django-free (DESIGN §1).

- **Reader** (one task): pulls ``(received_at, raw)`` from the source, hands the raw frame to the
  optional recorder, then parses it, applies it to the mempool state, runs the whale lifecycle and,
  at most once per ``projection_interval`` seconds (and on every block), the block projection. All
  of that is synchronous CPU work bounded per frame, so the socket is read continuously.
- **Publisher** (one task): takes lifecycle events from a bounded in-memory buffer and calls the
  pluggable ``publish(event)`` sink: an ``async def`` sink is awaited, a plain function runs in a
  worker thread (a Celery ``.delay()`` blocks on Redis; the reader must not). While the sink
  fails, the same event is retried with exponential backoff (``publish_retry_base`` doubling up to
  ``publish_retry_cap``), keeping order. Events are rare, so the buffer (``event_buffer``) only
  fills during a long outage; an event that does not fit is counted in ``events_overflowed``,
  logged at ERROR and, when ``overflow_path`` is set, appended there as JSON Lines for a later
  re-publish — never dropped silently.
- **Heartbeat** (optional): ``heartbeat(stats_dict)`` every ``heartbeat_interval`` seconds.

Stop with ``stop()`` (or ``max_seconds``): the frame in hand is finished, the source closed, the
buffer flushed to the sink within ``flush_timeout`` seconds; leftovers are counted as
``events_unflushed`` and spilled to ``overflow_path`` when set.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from detection.ingest.blockscan import BlockFollower, BlockScan, BlockScanner
from detection.ingest.lifecycle import Chain, Event, WhaleTracker
from detection.ingest.projection import BlockLimits, Projection, project
from detection.ingest.protocol import (
    DEFAULT_WHALE_MIN_SATS,
    BlockInfo,
    FrameParser,
    whale_from_esplora,
)
from detection.ingest.rest import RestClient
from detection.ingest.resync import Resyncer
from detection.ingest.sources.base import FrameSource
from detection.ingest.sources.replay import Recorder
from detection.ingest.state import MemoryPolicy, MempoolState
from detection.ingest.watch import EMPTY as EMPTY_WATCH_SET
from detection.ingest.watch import WatchSet
from detection.txshape import WhaleTx

log = logging.getLogger(__name__)

PublishSink = Callable[[Event], Any]
HeartbeatSink = Callable[[dict[str, Any]], Any]
WatchRefresh = Callable[[Any], WatchSet | None]


@dataclass(frozen=True, slots=True)
class PendingWhale:
    """A whale an earlier run left pending: enough to follow it to its end."""

    chain_txid: str
    txid: str
    last_seq: int  # the highest event sequence of its chain so far
    effective_rate: float | None = None
    value: int | None = None  # output sum, sats: which whales track-txs follows first
    first_input: tuple[str, int] | None = None  # for the resync's outspend check


def read_rss_mb() -> float:
    import psutil  # imported lazily: only the default RSS reader needs it

    return psutil.Process().memory_info().rss / 2**20


@dataclass(slots=True)
class Stats:
    """Counters for the heartbeat; ``snapshot()`` adds the per-second rates."""

    source: str
    started_at: float = field(default_factory=time.time)
    connected: bool = False
    disconnected_since: float | None = None
    last_frame_at: float | None = None
    frames: int = 0
    txs: int = 0
    whales: int = 0
    mempool_size: int = 0
    pending_whales: int = 0
    reconnects: int = 0
    sequence_gaps: int = 0
    sequence_missed: int = 0
    malformed_frames: int = 0
    malformed: dict[str, int] = field(default_factory=dict)
    queue_depth: int = 0
    memory_level: str = "normal"
    rss_mb: float | None = None
    shed_txs: int = 0
    events_made: int = 0
    events_published: int = 0
    publish_failures: int = 0
    events_overflowed: int = 0
    events_unflushed: int = 0
    processing_errors: int = 0
    # Replacements named by a resync answer, fetched over REST: "fetched" or a failure reason.
    replacement_fetches: dict[str, int] = field(default_factory=dict)
    # REST calls to the source: {"requests": {endpoint: n}, "failures": {endpoint: {reason: n}}}.
    rest: dict[str, Any] = field(default_factory=dict)
    # Watchlists (issue 21): addresses watched, and txs followed only because they touch one.
    watched_addresses: int = 0
    watch_hits: int = 0
    # Block scans (BlockFollower's ScanStats plus "bad_txs", "queued"); empty when off.
    block_scans: dict[str, Any] = field(default_factory=dict)
    # Honest resync: pending whales left out of track-txs (over 100), "confirmed" answers not
    # trusted (no block beside them), and the REST checks' outcomes.
    track_txs_overflow: int = 0
    untrusted_confirmations: int = 0
    resync: dict[str, int] = field(default_factory=dict)
    projection_ms: float | None = None
    projections: int = 0
    tip_height: int | None = None
    # Latest fiat prices ({code: [price text, received_at]}) and the rejected ones by reason.
    prices: dict[str, list[Any]] = field(default_factory=dict)
    prices_rejected: dict[str, int] = field(default_factory=dict)
    frames_per_s: float = 0.0
    tx_per_s: float = 0.0
    whales_per_s: float = 0.0
    _window: tuple[float, int, int, int] | None = field(default=None, repr=False)

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        if self._window is not None:
            since, frames, txs, whales = self._window
            elapsed = max(now - since, 1e-9)
            self.frames_per_s = (self.frames - frames) / elapsed
            self.tx_per_s = (self.txs - txs) / elapsed
            self.whales_per_s = (self.whales - whales) / elapsed
        self._window = (now, self.frames, self.txs, self.whales)
        data = asdict(self)
        data.pop("_window", None)
        data["at"] = now
        return data


def whale_from_rest(tx: dict[str, Any]) -> WhaleTx:
    """A WhaleTx from an Esplora transaction fetched over REST (fee as stated, else unknown)."""
    weight = tx["weight"]
    if type(weight) is not int or weight <= 0:
        raise ValueError("bad weight")
    fee = tx.get("fee")
    return whale_from_esplora(
        tx,
        fee=fee if type(fee) is int and fee >= 0 else None,
        weight=weight,
        vsize=(weight + 3) // 4,
        effective_rate=None,
    )


async def _call_sink(sink: Callable[[Any], Any], argument: Any) -> None:
    if inspect.iscoroutinefunction(sink) or inspect.iscoroutinefunction(
        getattr(sink, "__call__", None)  # noqa: B004 - an object with an async __call__
    ):
        await sink(argument)
        return
    result = await asyncio.to_thread(sink, argument)
    if inspect.isawaitable(result):
        await result


class FramePipeline:
    """Parse -> state -> lifecycle -> projection for one frame at a time: the reader's
    synchronous work, usable on its own (benchmarks, tests, offline replays)."""

    def __init__(
        self,
        *,
        source: str,
        whale_min_sats: int = DEFAULT_WHALE_MIN_SATS,
        memory_policy: MemoryPolicy | None = None,
        projection_interval: float = 1.0,
        removal_grace_s: float = 10.0,
        removal_grace_updates: int = 10,
        block_limits: BlockLimits | None = None,
    ) -> None:
        self.block_limits = block_limits or BlockLimits()
        self.parser = FrameParser(whale_min_sats)
        self.state = MempoolState(memory_policy)
        self.tracker = WhaleTracker(
            source=source,
            removal_grace_s=removal_grace_s,
            removal_grace_updates=removal_grace_updates,
        )
        # Children of pending whales are reported by the parser (CPFP); a live keys view.
        self.parser.watch_txids = self.tracker.pending.keys()  # type: ignore[assignment]
        self.parser.mempool_txids = self.state.txs
        self.projection_interval = projection_interval
        self.projection: Projection | None = None
        self.projections = 0
        self.projection_ms: float | None = None
        self.frames = 0
        self.txs = 0
        self.whales = 0
        self.last_frame_at: float | None = None
        self._last_projection_at = float("-inf")
        # For block scans (IngestRunner): blocks the frames named, taken by the runner, and the
        # mined txids we held when each block came (by hash; "" when the hash came later).
        self.new_blocks: list[tuple[BlockInfo, bool]] = []  # (block, announced live)
        self.mined_known: dict[str, frozenset[str]] = {}

    def process(self, received_at: float, raw: str | bytes) -> tuple[list[Event], bool]:
        """Handle one raw frame; returns (events, whether it was a JSON object frame)."""
        frame = self.parser.parse(raw, received_at)
        self.frames += 1
        self.last_frame_at = received_at
        if frame is None:
            return [], False
        self.txs += len(frame.added)
        self.whales += len(frame.whales)
        if frame.mined:
            # Their output sums were known before the block: a block scan need not fetch them.
            txs = self.state.txs
            self.mined_known[frame.block.hash if frame.block else ""] = frozenset(
                t for t in frame.mined if t in txs
            )
            while len(self.mined_known) > 16:
                del self.mined_known[next(iter(self.mined_known))]
        if frame.blocks or frame.block is not None:
            self.new_blocks.extend((block, False) for block in frame.blocks)
            if frame.block is not None:
                self.new_blocks.append((frame.block, True))
        self.state.apply(frame)
        now = time.monotonic()
        # Projection at most once per interval, and only when someone needs it (a whale is
        # pending or arriving), plus on every block.
        due = frame.block is not None or (
            now - self._last_projection_at >= self.projection_interval
            and bool(self.tracker.pending or frame.whales)
        )
        if due:
            self.project(received_at, frame.block.height if frame.block else None)
        events = self.tracker.handle(frame)
        if due and self.projection is not None:
            events.extend(self.tracker.on_projection(self.projection, received_at))
        return events, True

    def project(self, made_at: float, tip_height: int | None = None) -> Projection:
        started = time.perf_counter()
        tip = self.tracker.tip
        self.projection = project(
            self.state.txs,
            parents=self.state.parents,
            limits=self.block_limits,
            made_at=made_at,
            tip_height=tip_height if tip_height is not None else (tip.height if tip else None),
        )
        self.tracker.projection = self.projection
        self._last_projection_at = time.monotonic()
        self.projections += 1
        self.projection_ms = (time.perf_counter() - started) * 1000
        return self.projection


class IngestRunner:
    def __init__(
        self,
        source: FrameSource,
        publish: PublishSink,
        *,
        whale_min_sats: int = DEFAULT_WHALE_MIN_SATS,
        heartbeat: HeartbeatSink | None = None,
        heartbeat_interval: float = 10.0,
        recorder: Recorder | None = None,
        rss_reader: Callable[[], float] | None = read_rss_mb,
        memory_policy: MemoryPolicy | None = None,
        memory_check_interval: float = 5.0,
        projection_interval: float = 1.0,
        event_buffer: int = 10_000,
        overflow_path: str | Path | None = None,
        publish_retry_base: float = 0.5,
        publish_retry_cap: float = 30.0,
        flush_timeout: float = 10.0,
        max_seconds: float | None = None,
        removal_grace_s: float = 10.0,
        removal_grace_updates: int = 10,
        block_scanner: BlockScanner | None = None,
        last_scanned_block: tuple[int, str] | None = None,
        on_block_scanned: Callable[[BlockInfo], Any] | None = None,
        catch_up_max_blocks: int = 12,
        scan_retry_base: float = 2.0,
        watch_refresh: WatchRefresh | None = None,
        watch_refresh_interval: float = 2.0,
        resync_rest: RestClient | None = None,
        resync_grace_s: float = 5.0,
        block_limits: BlockLimits | None = None,
    ) -> None:
        self.source = source
        self.publish = publish
        self.heartbeat = heartbeat
        self.heartbeat_interval = heartbeat_interval
        self.recorder = recorder
        self.rss_reader = rss_reader
        self.memory_check_interval = memory_check_interval
        self.event_buffer = event_buffer
        self.overflow_path = Path(overflow_path) if overflow_path else None
        self.publish_retry_base = publish_retry_base
        self.publish_retry_cap = publish_retry_cap
        self.flush_timeout = flush_timeout
        self.max_seconds = max_seconds
        spec = getattr(source, "spec", type(source).__name__)
        self.pipeline = FramePipeline(
            source=spec,
            whale_min_sats=whale_min_sats,
            memory_policy=memory_policy,
            projection_interval=projection_interval,
            removal_grace_s=removal_grace_s,
            removal_grace_updates=removal_grace_updates,
            block_limits=block_limits,
        )
        self.parser = self.pipeline.parser
        self.state = self.pipeline.state
        self.tracker = self.pipeline.tracker
        set_provider = getattr(source, "set_pending_provider", None)
        if set_provider is not None:
            set_provider(self.tracker.pending_txids)
        set_track = getattr(source, "set_track_provider", None)
        if set_track is not None:
            set_track(self.track_txids)
        # Frames a source builds from background REST fetches (a resync answer's replacement):
        # processed like any frame, never awaited by the socket reader.
        set_late = getattr(source, "set_late_frame_listener", None)
        if set_late is not None:
            set_late(self._take_frame)
        self._restored: dict[str, PendingWhale] = {}
        self.stats = Stats(source=spec)
        self._last_memory_check = float("-inf")
        self._buffer: deque[Event] = deque()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._reader_done = False
        self._last_overflow_log = float("-inf")
        # Block scans (issue 13): every whale of every block, in a task of its own.
        self.blocks: BlockFollower | None = None
        if block_scanner is not None and last_scanned_block is not None:
            # So the first block after a restart is checked against it (previousblockhash).
            height, block_hash = last_scanned_block
            self.tracker.hashes.setdefault(height, block_hash)
        if block_scanner is not None:
            self.blocks = BlockFollower(
                block_scanner,
                is_known=self.tracker.is_known,
                apply=self._apply_block_scan,
                on_scanned=on_block_scanned,
                last_scanned=last_scanned_block,
                catch_up_max=catch_up_max_blocks,
                retry_base=scan_retry_base,
                hash_at=self.tracker.hashes.get,
                orphan=self._orphan,
            )
        self.block_scan_bad_txs = 0
        # Honest resync (issue 13): REST checks of pending whales after (re)connects and gaps.
        self.resync: Resyncer | None = None
        if resync_rest is not None:
            self.resync = resync = Resyncer(
                resync_rest,
                self.tracker,
                enqueue=self._enqueue,
                first_input=self.first_input,
                convert=whale_from_rest,
                grace_s=resync_grace_s,
                scans_idle=self.blocks.idle if self.blocks is not None else None,
            )
            set_listener = getattr(source, "set_connect_listener", None)
            if set_listener is not None:
                set_listener(lambda: resync.trigger("connect"))
        self._seen_gaps = 0
        self.ghosts_cleared = 0  # mempool txs forgotten because a block scan found them mined
        # Watchlists (issue 21): `watch_refresh(version)` returns a new WatchSet when the
        # watchlists changed since `version`, else None; it runs in a thread every interval.
        self.watch_refresh = watch_refresh
        self.watch_refresh_interval = watch_refresh_interval
        self.watch_set: WatchSet = EMPTY_WATCH_SET

    def restore_pending(self, whales: list[PendingWhale]) -> int:
        """Follow whales an earlier run saw and left pending (call before ``run()``).

        A restarted ingest starts with an empty tracker: without this, a whale seen before a
        crash or a restart is never confirmed, replaced or dropped, and stays "pending" in the
        database for ever. The live source re-checks them with ``track-txs`` on connecting, and
        their later events continue the chain's sequence (unique per chain, kind and sequence),
        so none is mistaken for a repeat of one already recorded. Returns how many were added.
        """
        restored = 0
        for whale in whales:
            if whale.txid in self.tracker.pending:
                continue
            chain = Chain(
                chain_txid=whale.chain_txid, txid=whale.txid, whale=None, seq=whale.last_seq
            )
            chain.effective_rate = whale.effective_rate
            self.tracker.pending[whale.txid] = chain
            self._restored[whale.txid] = whale
            restored += 1
        return restored

    def expire_pending(self, whales: list[PendingWhale]) -> int:
        """Close whales an earlier run left pending too long as dropped ("expired"), through
        the event buffer like any other event (call before ``run()``). Returns how many."""
        now = time.time()
        closed = 0
        for whale in whales:
            if whale.txid in self.tracker.pending:
                continue
            chain = Chain(
                chain_txid=whale.chain_txid, txid=whale.txid, whale=None, seq=whale.last_seq
            )
            self.tracker.pending[whale.txid] = chain
            events = self.tracker.resolve_dropped(whale.txid, now, reason="expired")
            self._enqueue(events)
            closed += len(events)
        return closed

    def track_txids(self) -> list[str]:
        """Every pending whale, the most valuable first (what ``track-txs`` follows)."""

        def value(txid: str) -> int:
            chain = self.tracker.pending[txid]
            if chain.whale is not None:
                return chain.whale.value
            restored = self._restored.get(txid)
            return restored.value or 0 if restored is not None else 0

        return sorted(self.tracker.pending, key=value, reverse=True)

    def first_input(self, txid: str) -> tuple[str, int] | None:
        chain = self.tracker.pending.get(txid)
        if chain is not None and chain.whale is not None and chain.whale.inputs:
            first = chain.whale.inputs[0]
            return first.prev_txid, first.prev_vout
        restored = self._restored.get(chain.chain_txid if chain else txid)
        return restored.first_input if restored is not None else None

    # -- the synchronous core (also used by the throughput benchmark) ------------------------

    def process_frame(self, received_at: float, raw: str | bytes) -> list[Event]:
        """Parse, apply, track, project (the pipeline), then record and check memory."""
        events, is_object = self.pipeline.process(received_at, raw)
        if self.recorder is not None:
            self.recorder.write(received_at, raw, valid_json=True if is_object else None)
        now = time.monotonic()
        if (
            self.rss_reader is not None
            and now - self._last_memory_check >= self.memory_check_interval
        ):
            self._last_memory_check = now
            self.check_memory(now)
        return events

    @property
    def projection(self) -> Projection | None:
        return self.pipeline.projection

    def check_memory(self, now: float) -> None:
        if self.rss_reader is None:
            return
        rss = self.rss_reader()
        self.stats.rss_mb = round(rss, 1)
        self.stats.memory_level = self.state.update_memory(rss, now).value

    # -- block scans ------------------------------------------------------------------------

    def _offer_blocks(self) -> None:
        pipeline = self.pipeline
        tracker = self.tracker
        if tracker.walk_backs:
            walks, tracker.walk_backs = tracker.walk_backs, []
            if self.blocks is not None:
                self.blocks.walk_back(walks)
        if not pipeline.new_blocks:
            return
        blocks, pipeline.new_blocks = pipeline.new_blocks, []
        if self.blocks is not None:
            self.blocks.offer(blocks, pipeline.mined_known)

    def _orphan(self, height: int, new_hash: str) -> None:
        self._enqueue(self.tracker.orphan_from(height, new_hash, time.time(), only=True))

    def _maybe_resync(self) -> None:
        if self.resync is None:
            return
        gaps = self.parser.sequence_gaps
        if gaps != self._seen_gaps:
            self._seen_gaps = gaps
            self.resync.trigger("sequence_gap")

    def _apply_block_scan(self, block: BlockInfo, scan: BlockScan) -> None:
        unseen = {}
        for txid, tx in scan.unseen.items():
            try:
                unseen[txid] = whale_from_rest(tx)
            except (KeyError, TypeError, ValueError) as exc:
                self.block_scan_bad_txs += 1
                log.warning("block %s: whale %s not usable (%s)", block.hash, txid, exc)
        self._enqueue(self.tracker.block_scanned(block, scan.known, unseen, time.time()))
        self.ghosts_cleared += self.state.discard_mined(scan.txids)

    # -- watchlists (issue 21) ----------------------------------------------------------------

    def set_watch_set(self, watch_set: WatchSet) -> None:
        """Swap the watched addresses (one assignment: the reader sees the old or the new)."""
        self.watch_set = watch_set
        self.parser.watch_set = watch_set
        if self.blocks is not None:
            self.blocks.scanner.watch_set = watch_set

    async def _watch_loop(self) -> None:
        assert self.watch_refresh is not None
        while True:
            try:
                fresh = await asyncio.to_thread(self.watch_refresh, self.watch_set.version)
            except Exception:
                log.exception("watchlist refresh failed; keeping %d addresses", len(self.watch_set))
                fresh = None
            if fresh is not None:
                self.set_watch_set(fresh)
                log.info("watching %d addresses (version %s)", len(fresh), fresh.version)
            await asyncio.sleep(self.watch_refresh_interval)

    # -- event buffer -----------------------------------------------------------------------

    def _enqueue(self, events: list[Event]) -> None:
        for event in events:
            self.stats.events_made += 1
            if len(self._buffer) < self.event_buffer:
                self._buffer.append(event)
                continue
            self.stats.events_overflowed += 1
            self._spill([event])
            now = time.monotonic()
            if now - self._last_overflow_log >= 10.0:
                self._last_overflow_log = now
                log.error(
                    "whale event buffer full (%d): %d events overflowed so far%s",
                    self.event_buffer,
                    self.stats.events_overflowed,
                    f", spilled to {self.overflow_path}" if self.overflow_path else " and LOST",
                )
        if events:
            self._wake.set()

    def _spill(self, events: list[Event]) -> None:
        if self.overflow_path is None or not events:
            return
        try:
            with self.overflow_path.open("ab") as handle:
                for event in events:
                    handle.write(orjson.dumps(event) + b"\n")
        except OSError:
            log.exception("could not spill %d whale events to %s", len(events), self.overflow_path)

    # -- tasks ------------------------------------------------------------------------------

    def _take_frame(self, received_at: float, raw: str | bytes) -> None:
        """One frame through the pipeline, its events queued (synchronous: between frames)."""
        if self._reader_done:
            return
        try:
            events = self.process_frame(received_at, raw)
        except Exception:
            # A bug in one frame's handling must not stop the ingest.
            self.stats.processing_errors += 1
            log.exception("processing a mempool frame failed")
            return
        self._enqueue(events)
        self._offer_blocks()
        self._maybe_resync()

    async def _read(self) -> None:
        async for received_at, raw in self.source:
            self._take_frame(received_at, raw)
            if self._stop.is_set():
                break
            # A source with frames already buffered never suspends; let the publisher and the
            # heartbeat run between frames.
            await asyncio.sleep(0)

    async def _publish_loop(self) -> None:
        delay = self.publish_retry_base
        buffer = self._buffer
        while True:
            if not buffer:
                if self._reader_done:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            event = buffer[0]
            try:
                await _call_sink(self.publish, event)
            except Exception as exc:  # noqa: BLE001 - any sink failure is retried
                self.stats.publish_failures += 1
                log.warning(
                    "publishing whale event %s failed (%s); retry in %.1f s",
                    event.get("event_id"),
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(self.publish_retry_cap, delay * 2)
                continue
            buffer.popleft()
            self.stats.events_published += 1
            delay = self.publish_retry_base

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            self._enqueue(self.tracker.expire(time.time()))
            await self._beat()

    async def _beat(self) -> None:
        if self.heartbeat is None:
            return
        try:
            await _call_sink(self.heartbeat, self.snapshot())
        except Exception:
            log.exception("heartbeat callback failed")

    def snapshot(self) -> dict[str, Any]:
        stats = self.stats
        parser = self.parser
        pipeline = self.pipeline
        stats.frames, stats.txs, stats.whales = pipeline.frames, pipeline.txs, pipeline.whales
        stats.last_frame_at = pipeline.last_frame_at
        stats.projections, stats.projection_ms = pipeline.projections, pipeline.projection_ms
        stats.connected = self.source.connected
        stats.disconnected_since = self.source.disconnected_since
        stats.reconnects = self.source.reconnects
        stats.replacement_fetches = dict(getattr(self.source, "replacement_fetches", None) or {})
        stats.sequence_gaps = parser.sequence_gaps
        stats.sequence_missed = parser.sequence_missed
        stats.malformed_frames = parser.malformed_frames
        stats.malformed = dict(parser.malformed)
        stats.mempool_size = len(self.state)
        stats.pending_whales = len(self.tracker.pending)
        stats.queue_depth = len(self._buffer)
        stats.shed_txs = self.state.shed_total
        stats.watched_addresses, stats.watch_hits = len(self.watch_set), parser.watch_hits
        stats.tip_height = self.tracker.tip.height if self.tracker.tip else None
        rest = getattr(self.source, "rest", None)
        if rest is not None:
            stats.rest = rest.snapshot()
        stats.track_txs_overflow = getattr(self.source, "track_txs_overflow", 0)
        stats.untrusted_confirmations = self.tracker.untrusted_confirmations
        if self.resync is not None:
            stats.resync = dict(self.resync.stats)
        if self.blocks is not None:
            stats.block_scans = {
                **asdict(self.blocks.stats),
                "bad_txs": self.block_scan_bad_txs,
                "ghosts_cleared": self.ghosts_cleared,
                "queued": self.blocks.queued,
            }
        stats.prices = self.tracker.prices.snapshot()
        stats.prices_rejected = dict(self.tracker.prices.rejected)
        return stats.snapshot()

    def stop(self) -> None:
        """Ask the pipeline to stop; ``run()`` returns once the buffer is flushed."""
        self._stop.set()

    async def run(self) -> dict[str, Any]:
        """Run until stopped, ``max_seconds`` elapsed or the source ended; returns final stats."""
        reader = asyncio.create_task(self._read(), name="ingest-reader")
        publisher = asyncio.create_task(self._publish_loop(), name="ingest-publisher")
        beating = (
            asyncio.create_task(self._heartbeat_loop(), name="ingest-heartbeat")
            if self.heartbeat is not None
            else None
        )
        scanning = (
            asyncio.create_task(self.blocks.run(), name="ingest-block-scans")
            if self.blocks is not None
            else None
        )
        resyncing = (
            asyncio.create_task(self.resync.run(), name="ingest-resync")
            if self.resync is not None
            else None
        )
        watching = (
            asyncio.create_task(self._watch_loop(), name="ingest-watchlists")
            if self.watch_refresh is not None
            else None
        )
        stop_wait = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait(
                {reader, stop_wait}, timeout=self.max_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            self._stop.set()
            stop_wait.cancel()
            for helper in (scanning, resyncing, watching):
                if helper is not None:
                    helper.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await helper
            await self.source.close()
            if not reader.done():
                # The source may be idle (no frame to end the loop on): the frame in hand was
                # processed synchronously, so cancelling at the await point loses nothing.
                done, _ = await asyncio.wait({reader}, timeout=1.0)
                if not done:
                    reader.cancel()
            reader_error = None
            with contextlib.suppress(asyncio.CancelledError):
                reader_error = await asyncio.gather(reader, return_exceptions=True)
            self._enqueue(self.tracker.expire(time.time()))
            self._reader_done = True
            self._wake.set()
            try:
                await asyncio.wait_for(publisher, timeout=self.flush_timeout)
            except TimeoutError:
                self.stats.events_unflushed = len(self._buffer)
                log.error(
                    "stopped with %d whale events not published%s",
                    len(self._buffer),
                    f"; spilled to {self.overflow_path}" if self.overflow_path else "",
                )
                self._spill(list(self._buffer))
            if beating is not None:
                beating.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beating
            if self.recorder is not None:
                self.recorder.flush()
            await self._beat()
        if reader_error and isinstance(reader_error[0], Exception):
            raise reader_error[0]
        return self.snapshot()
