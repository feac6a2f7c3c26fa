"""The live WebSocket client against a real local server speaking the mempool.space protocol."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import orjson
import pytest
from ingest_support import (
    MEMPOOL,
    Collector,
    MempoolServer,
    as_unconfirmed,
    closed_local_port,
    load,
    mempool_frame,
    strip_volatile,
    whales_277647,
)

from detection.ingest.runner import IngestRunner
from detection.ingest.sources import LiveSource, Recorder, backoff_delay, open_source

WANT = '{"action":"want","data":["blocks","mempool-blocks","stats"]}'
TRACK_MEMPOOL = '{"track-mempool":true}'
HASH_277647 = "0000000000000000054a714e580b16c583701712ab91060e92dbde6eb1e052a8"
BLOCK_277647 = {"id": HASH_277647, "height": 277_647, "timestamp": 1_388_400_000}


def live(server: MempoolServer, **options) -> LiveSource:
    options.setdefault("base_delay", 0.05)
    return LiveSource(server.url, use_env_proxy=False, **options)


def start(runner: IngestRunner) -> asyncio.Task:
    return asyncio.create_task(runner.run())


async def test_subscribes_exactly_and_reports_whales(mempool_server: MempoolServer):
    sink = Collector()
    runner = IngestRunner(live(mempool_server), sink, rss_reader=None)
    task = start(runner)
    messages = await mempool_server.wait_messages(0, 2)
    assert messages[:2] == [WANT, TRACK_MEMPOOL]
    await mempool_server.send((MEMPOOL / "tx01_ws_blocks_01.json").read_text())
    whales = [as_unconfirmed(t) for t in whales_277647()]
    await mempool_server.send(mempool_frame(1, added=whales))
    await sink.wait(3)
    await mempool_server.send(
        {"block": BLOCK_277647, **mempool_frame(2, mined=[w["txid"] for w in whales])}
    )
    events = await sink.wait(6)
    runner.stop()
    stats = await task
    assert [e["kind"] for e in events] == ["seen"] * 3 + ["confirmed"] * 3
    assert {e["txid"] for e in events} == {w["txid"] for w in whales}
    assert {e["block"]["height"] for e in events[3:]} == {277_647}
    seen_values = {e["txid"]: sum(o[0] for o in e["tx"]["outputs"]) for e in events[:3]}
    assert (
        seen_values["5143ba5524d21b646de5cd5a1ab6ee7b7823a59c87a347d3b5339e9f977e7dcd"]
        == 92_700_000_000
    )
    assert stats["connected"] is False and stats["frames"] == 3 and stats["events_published"] == 6
    # nothing pending at connect: no track-txs, only the init request (for the fiat prices)
    assert mempool_server.received[0][2:] == ['{"action":"init"}']


@pytest.mark.alone  # times itself
async def test_reconnect_resubscribes_and_resyncs_pending_whales(mempool_server: MempoolServer):
    sink = Collector()
    source = live(mempool_server)
    runner = IngestRunner(source, sink, rss_reader=None)
    task = start(runner)
    await mempool_server.wait_messages(0, 2)
    template = as_unconfirmed(whales_277647()[1])
    whales = [dict(template, txid=f"{i:064x}") for i in range(1, 251)]
    await mempool_server.send(mempool_frame(1, added=whales))
    await sink.wait(250)
    dropped_at = time.monotonic()
    await mempool_server.current.close()
    messages = await mempool_server.wait_messages(1, 3, timeout=5.0)
    assert time.monotonic() - dropped_at < 3.0
    assert messages[:2] == [WANT, TRACK_MEMPOOL]
    # One track-txs (each replaces the server's set), at most 100 txids; the rest counted; then
    # the init request (for the fiat prices).
    messages = await mempool_server.wait_messages(1, 4, timeout=5.0)
    assert len(messages) == 4
    tracked = orjson.loads(messages[2])["track-txs"]
    assert len(tracked) == 100 and set(tracked) <= {w["txid"] for w in whales}
    assert source.track_txs_overflow == 150
    assert messages[3] == '{"action":"init"}'
    assert source.reconnects == 1 and source.connected
    # The resync answer, beside the block (a "confirmed" alone is not trusted): one confirmed,
    # one replaced.
    await mempool_server.send(
        {
            "block": BLOCK_277647,
            "tracked-txs": {
                whales[0]["txid"]: {"confirmed": True},
                whales[1]["txid"]: {"replacedBy": "ee" * 32},
            },
        }
    )
    events = await sink.wait(252)
    runner.stop()
    await task
    assert [e["kind"] for e in events[250:]] == ["confirmed", "replaced"]
    assert events[250]["block"]["hash"] == HASH_277647
    assert events[251]["replacing_txid"] == "ee" * 32


async def test_large_frames_and_sequence_gaps_over_the_socket(mempool_server: MempoolServer):
    runner = IngestRunner(live(mempool_server), Collector(), rss_reader=None)
    task = start(runner)
    await mempool_server.wait_messages(0, 2)
    template = as_unconfirmed(whales_277647()[0])
    added = [dict(template, txid=f"{i:064x}", vout=[{"value": 5_000}]) for i in range(1_600)]
    big = orjson.dumps(
        mempool_frame(1, added=added, mined=[f"{i + 10**6:064x}" for i in range(4_000)])
    )
    assert len(big) > 2 * 2**20
    await mempool_server.send(big.decode())
    for sequence in (2, 5, 6):
        await mempool_server.send(mempool_frame(sequence))
    async with asyncio.timeout(5):
        while runner.pipeline.frames < 4:
            await asyncio.sleep(0.01)
    runner.stop()
    stats = await task
    assert stats["mempool_size"] == 1_600
    assert stats["sequence_gaps"] == 1 and stats["sequence_missed"] == 2
    assert stats["reconnects"] == 0


async def test_application_ping_gets_pong(mempool_server: MempoolServer):
    runner = IngestRunner(live(mempool_server, app_ping_interval=0.1), Collector(), rss_reader=None)
    task = start(runner)
    async with asyncio.timeout(5):
        while runner.parser.pongs < 1:
            await asyncio.sleep(0.01)
    runner.stop()
    await task
    assert '{"action":"ping"}' in mempool_server.received[0]


async def test_live_and_replay_give_identical_events(mempool_server: MempoolServer, tmp_path: Path):
    recording = tmp_path / "session.jsonl.gz"
    sink = Collector()
    with Recorder(recording) as recorder:
        runner = IngestRunner(
            live(mempool_server), sink, rss_reader=None, recorder=recorder, projection_interval=0.0
        )
        task = start(runner)
        await mempool_server.wait_messages(0, 2)
        tx01 = load(MEMPOOL / "tx01_api_cached.json")
        tx02 = load(MEMPOOL / "tx02_api_tx.json")
        whales = [as_unconfirmed(t) for t in whales_277647()]
        frames = [
            (MEMPOOL / "tx01_ws_blocks_01.json").read_text(),  # pretty-printed, as recorded
            orjson.dumps(mempool_frame(1, added=[*whales, tx01])).decode(),
            "garbage that is not JSON",
            orjson.dumps(
                mempool_frame(
                    2,
                    added=[tx02],
                    removed=[tx01["txid"]],
                    replaced=[{"replaced": tx01["txid"], "by": tx02}],
                )
            ).decode(),
            (MEMPOOL / "tx02_ws_block.json").read_text(),
            orjson.dumps(
                {"block": BLOCK_277647, **mempool_frame(3, mined=[whales[0]["txid"]])}
            ).decode(),
        ]
        for frame in frames:
            await mempool_server.send(frame)
        async with asyncio.timeout(5):
            while runner.pipeline.frames < len(frames):
                await asyncio.sleep(0.01)
        runner.stop()
        await task
    live_events = list(sink.events)
    assert len(live_events) >= 4
    replay_sink = Collector()
    replay = IngestRunner(
        open_source(f"replay:{recording}?speed=0"),
        replay_sink,
        rss_reader=None,
        projection_interval=0.0,
    )
    stats = await replay.run()
    assert stats["frames"] == len(frames) and stats["malformed_frames"] == 1
    assert [strip_volatile(e) for e in replay_sink.events] == [
        strip_volatile(e) for e in live_events
    ]


def test_backoff_schedule():
    rng = random.Random(3)
    expected = [1, 2, 4, 8, 16, 30, 30, 30]
    for attempt, nominal in enumerate(expected):
        for _ in range(50):
            delay = backoff_delay(attempt, rng=rng)
            assert nominal * 0.8 <= delay <= nominal * 1.2
    assert backoff_delay(3, base=0.01, jitter=0.0) == pytest.approx(0.08)


async def test_reconnect_attempts_back_off_while_the_server_is_down():
    port = closed_local_port()
    source = LiveSource(f"ws://127.0.0.1:{port}/api/v1/ws", base_delay=0.02, use_env_proxy=False)
    runner = IngestRunner(source, Collector(), rss_reader=None, max_seconds=0.6)
    await runner.run()
    delays = source.delays
    assert len(delays) >= 3
    for attempt, delay in enumerate(delays):
        nominal = min(30.0, 0.02 * 2**attempt)
        assert nominal * 0.8 <= delay <= nominal * 1.2
    assert source.connected is False and source.disconnected_since is not None
