"""Watchlists in the ingest (issue 21): a small payment of real block 277647 to a watched
address is followed like a whale, over a real local mempool.space-protocol server."""

from __future__ import annotations

import asyncio
import threading

import orjson
from ingest_support import (
    BLOCK_277647,
    Collector,
    MempoolServer,
    NullSource,
    as_unconfirmed,
    esplora_txs_277647,
    feed,
    make_runner,
    mempool_frame,
)
from test_ingest_blockscan import (
    FLOOR,
    WHALES_277647,
    previous_block,
    serve_277647,
    start_runner,
    ws_block,
)

from detection.ingest.protocol import FrameParser
from detection.ingest.runner import IngestRunner
from detection.ingest.sources.live import LiveSource
from detection.ingest.watch import WatchSet, touches

SMALL_TXID = "54d3c39b4726ea0eb8e8ccbd9323d329319126b29adab03e475805e069d96d98"
SMALL_RECIPIENT = "1P33wMqVqwFVX84H8E2yGGFzxLniFS1z8F"
SMALL_SENDER = "1CcwRkiTYJywMZfLMQewph8qiP76pg1eiv"


def small_tx() -> dict:
    return next(tx for tx in esplora_txs_277647() if tx["txid"] == SMALL_TXID)


def test_unwatched_small_tx_is_ignored_and_watched_one_followed():
    runner = make_runner()
    assert feed(runner, mempool_frame(1, added=[as_unconfirmed(small_tx())]), 1.0) == []
    runner = make_runner()
    runner.set_watch_set(WatchSet({SMALL_RECIPIENT}, 1))
    [seen] = feed(runner, mempool_frame(1, added=[as_unconfirmed(small_tx())]), 1.0)
    assert (seen["kind"], seen["txid"]) == ("seen", SMALL_TXID)
    assert runner.snapshot()["watch_hits"] == 1
    assert runner.snapshot()["watched_addresses"] == 1


def test_a_spending_address_is_matched_through_prevouts():
    runner = make_runner()
    runner.set_watch_set(WatchSet({SMALL_SENDER}, 1))
    [seen] = feed(runner, mempool_frame(1, added=[as_unconfirmed(small_tx())]), 1.0)
    assert seen["txid"] == SMALL_TXID


async def test_seen_then_confirmed_over_the_socket(mempool_server: MempoolServer):
    source = LiveSource(mempool_server.url, use_env_proxy=False, base_delay=0.05)
    sink = Collector()
    runner = IngestRunner(source, sink, rss_reader=None, whale_min_sats=FLOOR)
    runner.set_watch_set(WatchSet({SMALL_RECIPIENT}, 1))
    task = asyncio.create_task(runner.run())
    await mempool_server.wait_messages(0, 2)
    await mempool_server.send({"blocks": [previous_block()]})
    await mempool_server.send(mempool_frame(1, added=[as_unconfirmed(small_tx())]))
    block = {"id": BLOCK_277647, "height": 277647, "timestamp": 1388367102}
    await mempool_server.send({"block": block, **mempool_frame(2, mined=[SMALL_TXID])})
    events = await sink.wait(2)
    runner.stop()
    await task
    assert [(e["kind"], e["txid"]) for e in events] == [
        ("seen", SMALL_TXID),
        ("confirmed", SMALL_TXID),
    ]
    assert events[1]["block"]["height"] == 277647


async def test_a_payment_only_in_a_block_is_found_by_the_scan(mempool_server: MempoolServer):
    block = serve_277647(mempool_server)
    mempool_server.rest_txs[SMALL_TXID] = small_tx()
    source, runner, sink = await start_runner(mempool_server)
    runner.set_watch_set(WatchSet({SMALL_RECIPIENT}, 1))
    task = asyncio.create_task(runner.run())
    await mempool_server.wait_messages(0, 2)
    await mempool_server.send({"blocks": [previous_block()]})
    await mempool_server.send(mempool_frame(1))
    await mempool_server.send({"block": ws_block(block), **mempool_frame(2, mined=[])})
    events = await sink.wait(4)
    runner.stop()
    await task
    assert [e["kind"] for e in events] == ["confirmed"] * 4
    assert {e["txid"] for e in events} == set(WHALES_277647) | {SMALL_TXID}
    small = next(e for e in events if e["txid"] == SMALL_TXID)
    assert small["block"]["height"] == 277647
    assert runner.snapshot()["block_scans"]["last_scanned_hash"] == BLOCK_277647


class IdleSource(NullSource):
    """Connected, sending nothing, until closed."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def __anext__(self):
        await self.closed.wait()
        raise StopAsyncIteration

    async def close(self) -> None:
        self.closed.set()


async def test_a_changed_watchlist_is_picked_up_without_a_restart():
    answers = iter([WatchSet(set(), 1), None, WatchSet({SMALL_RECIPIENT}, 2)])
    adopted = threading.Event()
    calls: list = []

    def refresh(known):
        calls.append(known)
        if known == 2:  # the loop asks with the version it now holds
            adopted.set()
        return next(answers, None)

    runner = IngestRunner(
        IdleSource(), [].append, rss_reader=None, watch_refresh=refresh, watch_refresh_interval=0.01
    )
    task = asyncio.create_task(runner.run())
    assert await asyncio.to_thread(adopted.wait, 10)
    runner.stop()
    await task
    assert calls[:4] == [None, 1, 1, 2]
    assert runner.parser.watch_set.addresses == {SMALL_RECIPIENT}


def _variants(tx: dict) -> list[dict]:
    """A real tx and malformed shapes of its addresses, outputs and inputs."""
    out, vin = tx["vout"][0], tx["vin"][0]
    return [
        tx,
        {**tx, "vout": [{**out, "scriptpubkey_address": ["not", "hashable"]}, *tx["vout"][1:]]},
        {**tx, "vout": [{k: v for k, v in out.items() if k != "scriptpubkey_address"}]},
        {**tx, "vin": [{**vin, "prevout": None}, *tx["vin"][1:]]},
        {**tx, "vin": [{**vin, "prevout": "text"}, *tx["vin"][1:]]},
        {**tx, "vin": [{**vin, "prevout": {"scriptpubkey_address": {"a": 1}}}, *tx["vin"][1:]]},
        {**tx, "vin": ["junk", *tx["vin"]]},
        {**tx, "vin": "junk"},
        {k: v for k, v in tx.items() if k != "vin"},
    ]


def test_the_parsers_inlined_check_answers_as_touches():
    """The hot loop inlines detection.ingest.watch.touches; both must pick the same txs."""
    txs = [as_unconfirmed(t) for t in esplora_txs_277647()[:40]] + [as_unconfirmed(small_tx())]
    candidates = [variant for tx in txs for variant in _variants(tx)]
    below_floor = [tx for tx in candidates if sum(o["value"] for o in tx["vout"]) < FLOOR]
    picked = 0
    for watched in ({SMALL_RECIPIENT}, {SMALL_SENDER}, {SMALL_RECIPIENT, SMALL_SENDER}, set()):
        watch_set = WatchSet(watched, 1)
        for index, tx in enumerate(below_floor):
            parser = FrameParser(whale_min_sats=FLOOR)
            parser.watch_set = watch_set
            parser.parse(orjson.dumps(mempool_frame(1, added=[tx])), 1.0)
            expected = touches(tx, watch_set.addresses)
            assert parser.watch_hits == int(expected), (index, watched)
            picked += expected
    assert picked > 0
    # The sender spends all eight inputs: only shapes without any readable input miss it.
    sender = WatchSet({SMALL_SENDER}, 1).addresses
    assert [touches(tx, sender) for tx in _variants(as_unconfirmed(small_tx()))] == [True] * 7 + [
        False
    ] * 2
