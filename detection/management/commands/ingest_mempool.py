"""The ingest process: one mempool source → whale lifecycle events → Celery.

Thin: the pipeline is detection.ingest (no Django). This command wires it to the settings, the
Celery task, the heartbeat in Redis and detection.signals.ingest_heartbeat (the dashboard's
status push), and stops gracefully on
SIGINT/SIGTERM (the frame in hand is finished and buffered events are flushed to the broker).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection
from django.db.models import Max
from django.utils import timezone

from detection import pending_events, watching
from detection.block_scans import last_scanned_block, save_scanned_block
from detection.domain.urgency import FeeSpikeDetector
from detection.ingest.blockscan import BlockScanner
from detection.ingest.projection import BlockLimits
from detection.ingest.runner import IngestRunner, PendingWhale
from detection.ingest.sources import open_source
from detection.ingest.sources.replay import Recorder
from detection.ingest.state import MemoryPolicy
from detection.models import WhaleEvent, WhaleStatus, WhaleTransaction, task_priority
from detection.signals import ingest_heartbeat
from detection.tasks import record_whale_event
from detection.txshape import SATS_PER_BTC
from whaleproject import metrics
from whaleproject.health import celery_queue_depth, write_ingest_heartbeat

log = logging.getLogger("detection.ingest")

HEARTBEAT_SECONDS = 5.0
# Written on every stop (WHALE_VAR_DIR): where the stream was, so an operator (or a later resync)
# knows what the last run had handled.
POSITION_FILE = "ingest-state.json"
# Whales untouched for longer are not followed again after a restart (bitcoind's mempool
# expiry). Judged by the row's last change, our own clock: firstSeen is the source's word and
# may be anything (a replayed or synthetic stream's clock, a whale seen long before).
RESTORE_LIMIT = 20_000


def pending_whales_from_database(source: str) -> tuple[list[PendingWhale], list[PendingWhale]]:
    """The whales this source left pending, from the record of truth (the database): those to
    follow again, and those pending longer than ``WHALE_PENDING_EXPIRY_DAYS`` (bitcoind's
    mempool expiry), to be closed as dropped through the outbox like any other event.

    Not from the position file: a crashed or killed ingest writes none, and the database also
    knows the whales whose events were still queued when the file was written. Age is the
    row's last change, our own clock: firstSeen is the source's word and may be anything.
    """
    since = timezone.now() - timedelta(days=settings.WHALE_PENDING_EXPIRY_DAYS)
    pending = WhaleTransaction.everything.filter(  # watch-only hits too (issue 21)
        status=WhaleStatus.PENDING, source=source[:200]
    ).select_related("chain")
    whales = list(pending.filter(updated_at__gte=since).order_by("-first_seen_at")[:RESTORE_LIMIT])
    expired = list(pending.filter(updated_at__lt=since).order_by("first_seen_at")[:RESTORE_LIMIT])
    roots = {whale.chain_root.pk for whale in whales + expired}
    last_seq = dict(
        WhaleEvent.everything.filter(chain_id__in=roots)
        .values_list("chain_id")
        .annotate(Max("sequence"))
        .values_list("chain_id", "sequence__max")
    )

    def pending_whale(whale: WhaleTransaction) -> PendingWhale:
        first = whale.inputs[0] if whale.inputs else {}
        outpoint = (first.get("txid"), first.get("vout"))
        return PendingWhale(
            chain_txid=whale.chain_root.txid,
            txid=whale.txid,
            last_seq=last_seq.get(whale.chain_root.pk) or 0,
            effective_rate=whale.best_fee_rate,
            value=whale.value,
            first_input=outpoint if type(outpoint[0]) is str and type(outpoint[1]) is int else None,
        )

    return [pending_whale(w) for w in whales], [pending_whale(w) for w in expired]


def save_position(path: Path, runner: IngestRunner, final: dict[str, Any]) -> dict[str, Any]:
    """Write the stop position atomically (a crash mid-write leaves the previous file whole)."""
    tip = runner.tracker.tip
    stopped_at = time.time()
    position = {
        "source": final.get("source"),
        "stopped_at": stopped_at,
        "stopped_at_iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stopped_at)),
        "last_sequence": runner.parser.last_sequence,
        "tip_height": tip.height if tip else None,
        "tip_hash": tip.hash if tip else None,
        "last_frame_at": final.get("last_frame_at"),
        "frames": final.get("frames", 0),
        "events_made": final.get("events_made", 0),
        "events_published": final.get("events_published", 0),
        "events_unflushed": final.get("events_unflushed", 0),
        "pending_whales": sorted(runner.tracker.pending_txids()),
    }
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(position, indent=2), encoding="utf-8")
    os.replace(temporary, path)
    return position


class EventPublisher:
    """Hands events to the Celery task; marks fee spikes on their projections first.

    The spike detector watches one series, block 0's median fee rate (``WhaleTracker.
    fee_references``: the server's ``medianFee``, else our projection's), from both the events
    and the heartbeat."""

    def __init__(self):
        self.spikes = FeeSpikeDetector()

    def observe_next_block_median(self, at: float, rate: float | None) -> None:
        if rate is not None and rate > 0:
            self.spikes.add(at, rate)

    def __call__(self, event: dict) -> None:
        projection = event.get("projection")
        if projection:
            self.observe_next_block_median(
                projection.get("made_at") or time.time(),
                projection.get("next_block_median_fee_rate"),
            )
            projection["fee_spike"] = self.spikes.spiking
        # Owned before it is published: from here a crash of this process or of a worker, or a
        # lost message, costs a re-publish (pending_events), not the event. Both raise while
        # Redis is down; the runner keeps the event and retries.
        pending_events.own(event)
        publish_event(event)


def publish_event(event: dict) -> None:
    record_whale_event.apply_async(
        args=[event], retry=False, priority=task_priority(event.get("kind", ""))
    )


class OwnedEventSweeper(threading.Thread):
    """Every few seconds: publish again the events not recorded within their deadline,
    including, right after a restart, those a killed ingest had owned."""

    def __init__(self, interval: float):
        super().__init__(name="owned-events", daemon=True)
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while True:
            try:
                depth = celery_queue_depth()
                pending_events.publish_overdue(
                    publish_event, queue_waiting=depth.waiting if depth is not None else None
                )
            except Exception:
                log.warning("could not publish overdue events (Redis down?)", exc_info=True)
            if self.stopped.wait(self.interval):
                return

    def stop(self) -> None:
        self.stopped.set()


class Heartbeat:
    """Every few seconds: the stats into Redis (health, metrics) and onto the dashboards."""

    def __init__(self, runner_ref: list, publisher: EventPublisher):
        self.runner_ref = runner_ref
        self.publisher = publisher

    def __call__(self, stats: dict) -> None:
        runner = self.runner_ref[0]
        if runner is not None:
            next_median = runner.tracker.fee_references().next_block_median
            stats["next_block_fee_rate"] = next_median
            self.publisher.observe_next_block_median(time.time(), next_median)
        stats["fee_spike"] = self.publisher.spikes.spiking
        metrics.ingest_stats.update(stats)
        try:
            write_ingest_heartbeat(stats)
        except Exception:
            log.warning("could not write the ingest heartbeat (Redis down?)", exc_info=True)
        try:
            ingest_heartbeat.send(sender=Heartbeat, status=stats)
        except Exception:
            log.warning("could not push ingest status to dashboards", exc_info=True)


class Command(BaseCommand):
    help = "Watch a mempool source and hand whale lifecycle events to the workers."

    def add_arguments(self, parser):
        parser.add_argument(
            "--source",
            default=None,
            help="wss://…, replay:PATH[?speed=N&loop=1] or synthetic:[?seed=N&tx_per_s=N&"
            "whale_ratio=N] (default WHALE_SOURCE)",
        )
        parser.add_argument("--record", default=None, help="also record every frame to PATH")
        parser.add_argument(
            "--max-seconds", type=float, default=None, help="stop after this many seconds"
        )

    def handle(self, *args, source, record, max_seconds, **options):
        spec = source or settings.WHALE_SOURCE
        if max_seconds is not None and max_seconds <= 0:
            raise CommandError("--max-seconds must be positive")
        try:
            frame_source = open_source(spec)
        except (ValueError, OSError) as exc:
            raise CommandError(str(exc)) from None
        recorder = None
        if record:
            try:
                recorder = Recorder(record)
            except OSError as exc:
                raise CommandError(f"cannot record to {record}: {exc.strerror}") from None
        publisher = EventPublisher()
        runner_ref: list = [None]
        runner = IngestRunner(
            frame_source,
            publisher,
            whale_min_sats=round(settings.WHALE_MIN_BTC * SATS_PER_BTC),
            block_limits=BlockLimits(
                max_weight=settings.WHALE_BLOCK_MAX_WEIGHT,
                reserved_weight=settings.WHALE_BLOCK_RESERVED_WEIGHT,
                min_fee_rate_per_kvb=settings.WHALE_BLOCK_MIN_TX_FEE,
            ),
            heartbeat=Heartbeat(runner_ref, publisher),
            heartbeat_interval=HEARTBEAT_SECONDS,
            recorder=recorder,
            memory_policy=MemoryPolicy(
                warning_mb=settings.WHALE_MEMORY_WARNING_MB,
                critical_mb=settings.WHALE_MEMORY_CRITICAL_MB,
                recovery_mb=settings.WHALE_MEMORY_RECOVERY_MB,
            ),
            overflow_path=settings.VAR_DIR / "ingest-overflow.jsonl",
            max_seconds=max_seconds,
            watch_refresh=watching.refresh_if_changed,
            watch_refresh_interval=settings.WATCHLIST_REFRESH_SECONDS,
            **self._block_scan_options(frame_source),
        )
        runner_ref[0] = runner
        self._restore_pending(runner, spec)
        self._load_watchlists(runner)
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        position_path = settings.VAR_DIR / POSITION_FILE
        self._report_previous_position(position_path)
        self._start_metrics_server()
        self.stdout.write(f"ingest: reading {spec} (whale floor {settings.WHALE_MIN_BTC} BTC)")
        sweeper = OwnedEventSweeper(settings.WHALE_EVENT_SWEEP_SECONDS)
        sweeper.start()
        try:
            final = asyncio.run(self._run(runner))
        finally:
            sweeper.stop()
            if recorder is not None:
                recorder.close()
        self.stdout.write(
            "ingest: stopped after {frames} frames, {txs} txs, {whales} whales, "
            "{events_published} events published, {events_unflushed} unflushed".format(
                **{
                    k: final.get(k, 0)
                    for k in ("frames", "txs", "whales", "events_published", "events_unflushed")
                }
            )
        )
        try:
            position = save_position(position_path, runner, final)
        except OSError as exc:
            log.error("could not save the ingest position to %s: %s", position_path, exc)
            return
        self.stdout.write(
            f"ingest: position saved to {position_path} (tip {position['tip_height']}, "
            f"sequence {position['last_sequence']}, {len(position['pending_whales'])} pending "
            "whales)"
        )

    def _block_scan_options(self, frame_source) -> dict[str, Any]:
        """Block scans and the resync's checks need the source's REST API: live sources only,
        unless turned off."""
        rest = getattr(frame_source, "rest", None)
        if rest is None or not settings.WHALE_BLOCK_SCAN:
            return {}
        try:
            last = last_scanned_block()
        except DatabaseError as exc:
            log.error("could not read the last scanned block (%s); blocks missed before this "
                      "start are not scanned", exc)  # fmt: skip
            last = None
        if last is not None:
            self.stdout.write(f"ingest: block scans continue after block {last[0]} {last[1]}")
        return {
            "block_scanner": BlockScanner(rest, round(settings.WHALE_MIN_BTC * SATS_PER_BTC)),
            "last_scanned_block": last,
            "on_block_scanned": save_scanned_block,
            "catch_up_max_blocks": settings.WHALE_CATCH_UP_MAX_BLOCKS,
            "resync_rest": rest,
        }

    def _restore_pending(self, runner: IngestRunner, spec: str) -> None:
        try:
            pending, expired = pending_whales_from_database(spec)
        except DatabaseError as exc:
            # Reading the source matters more: start without them, and say which are orphaned.
            log.error("could not load the pending whales from the database (%s); whales left "
                      "pending by the previous run will not be followed", exc)  # fmt: skip
            return
        finally:
            connection.close()  # the ingest holds no database connection while it runs
        restored = runner.restore_pending(pending)
        if restored:
            self.stdout.write(f"ingest: following {restored} whales still pending from before")
        closed = runner.expire_pending(expired)
        if closed:
            self.stdout.write(
                f"ingest: {closed} whales pending for over {settings.WHALE_PENDING_EXPIRY_DAYS} "
                "days closed as dropped"
            )

    def _load_watchlists(self, runner: IngestRunner) -> None:
        """The watched addresses before the first frame (the refresh loop then follows changes)."""
        try:
            watch_set = watching.refresh_if_changed(None)
        except DatabaseError as exc:
            log.error("could not load the watchlists (%s); retrying while running", exc)
            return
        if watch_set is not None:
            runner.set_watch_set(watch_set)
            self.stdout.write(f"ingest: watching {len(watch_set)} addresses for watchlists")

    def _start_metrics_server(self) -> None:
        port = settings.WHALE_INGEST_METRICS_PORT
        if not port:
            return
        address = settings.WHALE_INGEST_METRICS_ADDRESS
        try:
            metrics.start_ingest_metrics_server(port, address)
        except OSError as exc:
            # Ingest matters more than its metrics: keep reading; Prometheus will see the target
            # down.
            log.warning("ingest metrics: cannot listen on %s:%s (%s)", address, port, exc.strerror)
            return
        self.stdout.write(f"ingest: metrics on http://{address}:{port}/metrics")

    def _report_previous_position(self, path: Path) -> None:
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        self.stdout.write(
            f"ingest: previous run stopped at {previous.get('stopped_at_iso')} "
            f"(tip {previous.get('tip_height')}, sequence {previous.get('last_sequence')}, "
            f"{previous.get('events_unflushed')} unflushed)"
        )

    async def _run(self, runner: IngestRunner) -> dict:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, runner.stop)
        final = await runner.run()
        await asyncio.to_thread(runner.heartbeat, runner.snapshot())
        return final
