"""A replacement named only by txid in a resync answer (``tracked-txs`` ``replacedBy``) is fetched
in the background from the same server's REST API (``GET /api/tx/<txid>``): the answer goes on at
once (a "replaced" event without the tx), and a second "replaced" event carries the tx when the
fetch returns. Real local server (WebSocket and HTTP on one port, like mempool.space), no mocks."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from ingest_support import Collector, MempoolServer, as_unconfirmed, mempool_frame, whales_277647

from detection.ingest.runner import FramePipeline, IngestRunner
from detection.ingest.sources import LiveSource
from detection.ingest.sources.live import rest_base

HASH_277647 = "0000000000000000054a714e580b16c583701712ab91060e92dbde6eb1e052a8"
BLOCK_277647 = {"id": HASH_277647, "height": 277_647, "timestamp": 1_388_400_000}
NEW = "ee" * 32


def replacement_of(whale: dict) -> dict:
    """An RBF replacement of ``whale``: same inputs, a higher fee taken from the change."""
    tx = dict(whale, txid=NEW, fee=whale["fee"] + 12_345)
    vout = [dict(o) for o in whale["vout"]]
    vout[-1]["value"] -= 12_345
    tx["vout"] = vout
    return tx


async def follow_then_reconnect(
    server: MempoolServer, **options
) -> tuple[LiveSource, IngestRunner, Collector, asyncio.Task, dict]:
    """A whale seen on the first connection, then the connection dropped: the client resyncs."""
    options.setdefault("base_delay", 0.05)
    source = LiveSource(server.url, use_env_proxy=False, **options)
    sink = Collector()
    runner = IngestRunner(source, sink, rss_reader=None)
    task = asyncio.create_task(runner.run())
    await server.wait_messages(0, 2)
    whale = as_unconfirmed(whales_277647()[0])
    await server.send(mempool_frame(1, added=[whale]))
    await sink.wait(1)
    await server.current.close()
    messages = await server.wait_messages(1, 3)
    assert orjson.loads(messages[2]) == {"track-txs": [whale["txid"]]}
    return source, runner, sink, task, whale


async def confirm_new_and_stop(
    server: MempoolServer, runner: IngestRunner, sink: Collector, task: asyncio.Task, count: int
) -> list[dict]:
    """The replacement confirms: the chain goes on, so the reader is alive and in step."""
    await server.send({"block": BLOCK_277647, **mempool_frame(2, mined=[NEW])})
    events = await sink.wait(count)
    runner.stop()
    await task
    return events


def assert_carries_replacement(replaced: dict, whale: dict, new_tx: dict) -> None:
    assert replaced["kind"] == "replaced"
    assert replaced["replaced_txid"] == whale["txid"] and replaced["replacing_txid"] == NEW
    assert replaced["chain_txid"] == whale["txid"]
    assert replaced["tx"]["txid"] == NEW
    assert sum(o[0] for o in replaced["tx"]["outputs"]) == sum(o["value"] for o in new_tx["vout"])
    assert sum(o[0] for o in replaced["tx"]["outputs"]) == 10_302_775_338 - 12_345
    assert replaced["tx"]["fee"] == 50_000 + 12_345
    assert replaced["changes"]["fee"] == [50_000, 62_345]
    assert [i[3] for i in replaced["tx"]["inputs"]] == [
        v["prevout"]["value"] if v.get("prevout") else None for v in new_tx["vin"]
    ]


async def test_resync_replacement_is_fetched_and_carried(mempool_server: MempoolServer):
    source, runner, sink, task, whale = await follow_then_reconnect(mempool_server)
    new_tx = replacement_of(whale)
    mempool_server.rest_txs[NEW] = new_tx
    await mempool_server.send({"tracked-txs": {whale["txid"]: {"replacedBy": NEW}}})
    await sink.wait(3)
    events = await confirm_new_and_stop(mempool_server, runner, sink, task, 4)
    assert [e["kind"] for e in events] == ["seen", "replaced", "replaced", "confirmed"]
    assert events[1]["tx"] is None and events[1]["replacing_txid"] == NEW
    assert_carries_replacement(events[2], whale, new_tx)
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert events[3]["txid"] == NEW and events[3]["chain_txid"] == whale["txid"]
    assert events[3]["tx"]["txid"] == NEW
    assert mempool_server.rest_requests == [f"/api/tx/{NEW}"]
    assert dict(source.replacement_fetches) == {"fetched": 1}
    assert runner.snapshot()["replacement_fetches"] == {"fetched": 1}


async def test_held_rest_answer_does_not_block_the_reader(mempool_server: MempoolServer):
    source, runner, sink, task, whale = await follow_then_reconnect(mempool_server, rest_timeout=5)
    new_tx = replacement_of(whale)
    mempool_server.rest_txs[NEW] = new_tx
    gate = mempool_server.rest_tx_gate = asyncio.Event()
    mempool_server.rest_answered.clear()
    await mempool_server.send({"tracked-txs": {whale["txid"]: {"replacedBy": NEW}}})
    await asyncio.wait_for(mempool_server.rest_answered.wait(), 5)
    other = as_unconfirmed(whales_277647()[1])
    await mempool_server.send(mempool_frame(2, added=[other]))
    events = await sink.wait(3)
    # Both frames went through while the REST answer is still held back.
    assert not gate.is_set() and not source.replacement_fetches
    assert [e["kind"] for e in events] == ["seen", "replaced", "seen"]
    assert events[1]["tx"] is None and events[1]["replacing_txid"] == NEW
    assert events[2]["txid"] == other["txid"]
    gate.set()
    await source.replacement_fetches_settled()
    events = await sink.wait(4)
    assert_carries_replacement(events[3], whale, new_tx)
    events = await confirm_new_and_stop(mempool_server, runner, sink, task, 5)
    assert events[4]["kind"] == "confirmed" and events[4]["txid"] == NEW
    assert events[4]["tx"]["txid"] == NEW and events[4]["chain_txid"] == whale["txid"]
    assert mempool_server.rest_requests == [f"/api/tx/{NEW}"]
    assert dict(source.replacement_fetches) == {"fetched": 1}
    assert runner.stats.processing_errors == 0


@pytest.mark.parametrize(
    ("serve", "reason", "tries"),
    [
        ("missing", "http_404", 1),
        ("hang", "timeout", 3),
        ("garbage", "bad_json", 1),
        ("other", "wrong_tx", 1),
    ],
)
@pytest.mark.alone  # times itself
async def test_failed_fetch_keeps_the_old_behaviour(
    mempool_server: MempoolServer, serve: str, reason: str, tries: int
):
    source, runner, sink, task, whale = await follow_then_reconnect(
        mempool_server, rest_timeout=0.3
    )
    source.rest.backoff_base = 0.05
    if serve == "hang":
        mempool_server.rest_hang = True
    elif serve == "garbage":
        mempool_server.rest_txs[NEW] = '{"txid": "' + NEW
    elif serve == "other":
        mempool_server.rest_txs[NEW] = dict(replacement_of(whale), txid="dd" * 32)
    sent_at = time.monotonic()
    await mempool_server.send({"tracked-txs": {whale["txid"]: {"replacedBy": NEW}}})
    await sink.wait(2)
    assert time.monotonic() - sent_at < 0.3  # the reader waits for no REST answer
    await source.replacement_fetches_settled()
    events = await confirm_new_and_stop(mempool_server, runner, sink, task, 3)
    assert [e["kind"] for e in events] == ["seen", "replaced", "confirmed"]
    assert events[1]["replacing_txid"] == NEW and events[1]["tx"] is None
    assert events[2]["txid"] == NEW and events[2]["chain_txid"] == whale["txid"]
    # Retried with the client's bounded backoff when transient, every failed try counted.
    assert mempool_server.rest_requests == [f"/api/tx/{NEW}"] * tries
    assert sum(source.rest.failures["tx"].values()) == tries
    assert dict(source.replacement_fetches) == {reason: 1}
    assert runner.snapshot()["replacement_fetches"] == {reason: 1}
    assert runner.stats.processing_errors == 0


async def test_known_replacement_is_not_fetched_and_keeps_its_tx(mempool_server: MempoolServer):
    source = LiveSource(mempool_server.url, use_env_proxy=False, base_delay=0.05)
    sink = Collector()
    runner = IngestRunner(source, sink, rss_reader=None)
    task = asyncio.create_task(runner.run())
    await mempool_server.wait_messages(0, 2)
    whale = as_unconfirmed(whales_277647()[0])
    new_tx = replacement_of(whale)
    await mempool_server.send(mempool_frame(1, added=[whale, new_tx]))
    await sink.wait(2)
    await mempool_server.current.close()
    await mempool_server.wait_messages(1, 3)
    await mempool_server.send({"tracked-txs": {whale["txid"]: {"replacedBy": NEW}}})
    events = await confirm_new_and_stop(mempool_server, runner, sink, task, 4)
    assert [e["kind"] for e in events] == ["seen", "seen", "replaced", "confirmed"]
    assert events[2]["tx"]["txid"] == NEW and events[2]["chain_txid"] == whale["txid"]
    assert mempool_server.rest_requests == []
    assert not source.replacement_fetches


def test_rest_base_stays_on_the_websocket_host():
    assert rest_base("wss://mempool.space/api/v1/ws") == "https://mempool.space/api"
    assert rest_base("wss://mempool.space/testnet/api/v1/ws") == "https://mempool.space/testnet/api"
    assert rest_base("ws://user:pw@127.0.0.1:8999/api/v1/ws") == "http://127.0.0.1:8999/api"
    assert rest_base("ws://[::1]:8999/ws") == "http://[::1]:8999/api"


def test_late_tx_after_the_chain_moved_on_changes_nothing():
    pipeline = FramePipeline(source="test")
    whale = as_unconfirmed(whales_277647()[0])
    new_tx = replacement_of(whale)
    late = {"mempool-transactions": {"replaced": [{"replaced": whale["txid"], "by": new_tx}]}}
    frames = [
        mempool_frame(1, added=[whale]),
        {"tracked-txs": {whale["txid"]: {"replacedBy": NEW}}},
        {"block": BLOCK_277647, **mempool_frame(2, mined=[NEW])},
        late,
    ]
    kinds = [
        [e["kind"] for e in pipeline.process(float(at), orjson.dumps(frame))[0]]
        for at, frame in enumerate(frames, start=1)
    ]
    assert kinds == [["seen"], ["replaced"], ["confirmed"], []]
    assert not pipeline.tracker.pending and not pipeline.tracker.replaced_without_tx
