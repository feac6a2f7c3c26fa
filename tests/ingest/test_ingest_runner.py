"""The asyncio pipeline: publishing with retries, bounded buffer, graceful stop, heartbeat."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import orjson
from ingest_support import as_unconfirmed, mempool_frame, whales_277647

from detection.ingest.runner import IngestRunner
from detection.ingest.sources import Recorder, open_source
from detection.ingest.state import MemoryPolicy


def recording_with_whales(path: Path, count: int = 5) -> Path:
    template = as_unconfirmed(whales_277647()[1])
    with Recorder(path) as recorder:
        for i in range(count):
            frame = mempool_frame(i + 1, added=[dict(template, txid=f"{i + 1:064x}")])
            recorder.write(float(i), orjson.dumps(frame))
    return path


async def test_failing_sink_is_retried_in_order(tmp_path: Path):
    path = recording_with_whales(tmp_path / "w.jsonl")
    published: list[str] = []
    attempts = 0

    async def flaky(event: dict) -> None:
        nonlocal attempts
        attempts += 1
        if attempts <= 3:
            raise ConnectionError("broker down")
        published.append(event["txid"])

    runner = IngestRunner(
        open_source(f"replay:{path}?speed=0"), flaky, rss_reader=None, publish_retry_base=0.01
    )
    stats = await runner.run()
    assert published == [f"{i:064x}" for i in range(1, 6)]
    assert stats["publish_failures"] == 3 and stats["events_published"] == 5


async def test_sync_sink_runs_off_the_event_loop(tmp_path: Path):
    path = recording_with_whales(tmp_path / "w.jsonl", 2)
    threads: list[str] = []

    def blocking_sink(event: dict) -> None:
        threads.append(threading.current_thread().name)

    stats = await IngestRunner(
        open_source(f"replay:{path}?speed=0"), blocking_sink, rss_reader=None
    ).run()
    assert stats["events_published"] == 2
    assert threading.main_thread().name not in threads


async def test_overflow_is_counted_and_spilled_never_silent(tmp_path: Path):
    path = recording_with_whales(tmp_path / "w.jsonl", 6)
    overflow = tmp_path / "overflow.jsonl"
    release = asyncio.Event()

    async def stuck(event: dict) -> None:
        await release.wait()

    runner = IngestRunner(
        open_source(f"replay:{path}?speed=0"),
        stuck,
        rss_reader=None,
        event_buffer=2,
        overflow_path=overflow,
        flush_timeout=0.2,
    )
    stats = await runner.run()
    assert stats["events_made"] == 6
    assert stats["events_overflowed"] >= 3
    spilled = [orjson.loads(line) for line in overflow.read_bytes().splitlines()]
    # Overflowed events plus those still unpublished at the flush deadline: nothing vanished.
    assert len(spilled) == stats["events_overflowed"] + stats["events_unflushed"]
    assert stats["events_unflushed"] >= 1
    assert {e["txid"] for e in spilled} <= {f"{i:064x}" for i in range(1, 7)}


async def test_stop_flushes_buffer_and_heartbeat_reports():
    beats: list[dict] = []
    published: list[dict] = []

    async def sink(event: dict) -> None:
        published.append(event)

    # Bounded, so that a loaded host cannot make the paced source run away.
    source = open_source("synthetic:?seed=4&tx_per_s=300&whale_ratio=0.02&speed=20&frames=60")
    runner = IngestRunner(
        source,
        sink,
        heartbeat=beats.append,
        heartbeat_interval=0.2,
        rss_reader=lambda: 123.0,
        memory_check_interval=0.0,
    )
    task = asyncio.create_task(runner.run())
    await asyncio.sleep(1.5)
    runner.stop()
    stats = await asyncio.wait_for(task, 10)
    assert stats["frames"] > 5 and stats["txs"] > 1_000 and stats["whales"] > 0
    assert stats["events_published"] == stats["events_made"] == len(published) > 0
    assert stats["queue_depth"] == 0 and stats["rss_mb"] == 123.0
    assert stats["memory_level"] == "normal"
    assert len(beats) >= 2  # every 0.2 s for 1.5 s; a loaded host may delay some
    assert {
        "source",
        "connected",
        "last_frame_at",
        "frames_per_s",
        "tx_per_s",
        "whales_per_s",
        "mempool_size",
        "reconnects",
        "sequence_gaps",
        "malformed_frames",
        "queue_depth",
        "memory_level",
        "rss_mb",
        "events_published",
        "publish_failures",
    } <= set(beats[-1])
    assert any(beat["tx_per_s"] > 0 for beat in beats)
    # The synthetic source sends prices like mempool.space: they reach the heartbeat and the
    # whale events.
    assert set(stats["prices"]) == {"USD", "EUR", "GBP", "CAD", "CHF", "AUD", "JPY"}
    assert stats["prices_rejected"] == {}
    assert all(event["prices"].get("USD") for event in published)


async def test_max_seconds_and_memory_pressure_sheds():
    readings = iter([100.0, 450.0] + [450.0] * 1000)
    runner = IngestRunner(
        open_source("synthetic:?seed=9&tx_per_s=500&speed=0"),
        lambda event: None,
        rss_reader=lambda: next(readings),
        memory_check_interval=0.0,
        memory_policy=MemoryPolicy(shed_cooldown_s=3600),
        max_seconds=1.0,
    )
    stats = await asyncio.wait_for(runner.run(), 10)
    assert stats["memory_level"] == "warning"
    assert stats["shed_txs"] > 0
