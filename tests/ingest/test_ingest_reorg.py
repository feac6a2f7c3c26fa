"""A two-block reorg seen only through previousblockhash (issue 13): the new tip's height is new,
so nothing arrives at a height we already hold; the follower walks back over REST until the chains
meet, the whales of the orphaned blocks are reorged, and the new branch is scanned again.

The blocks are built from real transactions of block 277647 (headers made here, merkle roots
right, no proof of work): only two real consecutive blocks would do, and we hold none."""

from __future__ import annotations

import asyncio

from ingest_support import (
    Collector,
    MempoolServer,
    RestBlock,
    as_unconfirmed,
    make_block,
    mempool_frame,
    raw_block_277647,
    whales_277647,
)

from detection.ingest.blockparse import serialized_transactions
from detection.ingest.blockscan import BlockScanner
from detection.ingest.runner import IngestRunner
from detection.ingest.sources.live import LiveSource

FLOOR = 100 * 100_000_000


async def test_two_block_reorg_through_previousblockhash(mempool_server: MempoolServer):
    txs = {tx.txid: raw for raw, tx in serialized_transactions(raw_block_277647())}
    order = list(txs)
    coinbase, small = txs[order[0]], txs[order[1]]
    w1, w2, w3 = (t["txid"] for t in whales_277647())  # 103, 927 and 133 BTC
    time = 1_388_367_102

    def block(previous: str, height: int, members: list[bytes], nonce: int) -> RestBlock:
        raw = make_block(previous, [coinbase, *members], time + height, nonce)
        rest = RestBlock(raw, height)
        mempool_server.rest_blocks[rest.hash] = rest
        return rest

    common = block("00" * 32, 800, [small], 1)
    a801 = block(common.hash, 801, [txs[w1]], 2)
    a802 = block(a801.hash, 802, [txs[w2]], 3)
    b801 = block(common.hash, 801, [txs[w1], small], 4)
    b802 = block(b801.hash, 802, [txs[w3]], 5)
    b803 = block(b802.hash, 803, [small], 6)
    esplora = {t["txid"]: t for t in whales_277647()}
    mempool_server.rest_txs[w3] = dict(
        esplora[w3], status={"confirmed": True, "block_height": 802, "block_hash": b802.hash}
    )

    source = LiveSource(mempool_server.url, use_env_proxy=False, base_delay=0.05)
    sink = Collector()
    runner = IngestRunner(
        source,
        sink,
        rss_reader=None,
        block_scanner=BlockScanner(source.rest, FLOOR),
        scan_retry_base=0.05,
    )
    task = asyncio.create_task(runner.run())
    await mempool_server.wait_messages(0, 2)
    await mempool_server.send({"blocks": [common.ws_block()]})
    await mempool_server.send(
        mempool_frame(1, added=[as_unconfirmed(esplora[w1]), as_unconfirmed(esplora[w2])])
    )
    await mempool_server.send({"block": a801.ws_block(), **mempool_frame(2, mined=[w1])})
    await mempool_server.send({"block": a802.ws_block(), **mempool_frame(3, mined=[w2])})
    await sink.wait(4)
    async with asyncio.timeout(5):
        while runner.snapshot()["block_scans"]["last_scanned_height"] != 802:
            await asyncio.sleep(0.02)
    # The next block builds on another 802, itself on another 801.
    await mempool_server.send({"block": b803.ws_block(), **mempool_frame(4)})
    events = await sink.wait(8)
    async with asyncio.timeout(5):
        while runner.snapshot()["block_scans"]["last_scanned_height"] != 803:
            await asyncio.sleep(0.02)
    runner.stop()
    await task

    after = [(e["kind"], e["txid"], (e["block"] or {}).get("hash")) for e in events[4:]]
    assert after == [
        ("reorged", w2, a802.hash),
        ("reorged", w1, a801.hash),
        ("confirmed", w1, b801.hash),
        ("confirmed", w3, b802.hash),
    ]
    assert events[6]["seq"] == 4  # w1: seen, confirmed, reorged, confirmed again
    assert events[7]["seq"] == 1  # w3: only ever in a block
    assert w2 in runner.tracker.pending  # not in the new branch: pending again
    assert runner.tracker.hashes[801] == b801.hash and runner.tracker.hashes[803] == b803.hash
    stats = runner.snapshot()["block_scans"]
    assert stats["reorgs_walked"] == 1
    walked = [
        p for p in mempool_server.rest_requests if p.startswith("/api/block/") and p.count("/") == 3
    ]
    assert walked == [f"/api/block/{b802.hash}", f"/api/block/{b801.hash}"]


async def test_a_parent_the_server_does_not_know_orphans_nothing(mempool_server: MempoolServer):
    """A block frame naming an unknown previousblockhash (a bad frame, or a server behind):
    nothing is reorged on its word; the walk-back is retried, then given up and counted."""
    txs = {tx.txid: raw for raw, tx in serialized_transactions(raw_block_277647())}
    coinbase = txs[next(iter(txs))]
    w1 = whales_277647()[0]["txid"]
    base = RestBlock(make_block("00" * 32, [coinbase], 1_388_367_000, 1), 900)
    ours = RestBlock(make_block(base.hash, [coinbase, txs[w1]], 1_388_367_600, 2), 901)
    for block in (base, ours):
        mempool_server.rest_blocks[block.hash] = block
    source = LiveSource(mempool_server.url, use_env_proxy=False, base_delay=0.05)
    source.rest.retries = 0
    sink = Collector()
    runner = IngestRunner(
        source,
        sink,
        rss_reader=None,
        block_scanner=BlockScanner(source.rest, FLOOR),
        scan_retry_base=0.01,
    )
    task = asyncio.create_task(runner.run())
    await mempool_server.wait_messages(0, 2)
    await mempool_server.send({"blocks": [base.ws_block()]})
    await mempool_server.send(mempool_frame(1, added=[as_unconfirmed(whales_277647()[0])]))
    await mempool_server.send({"block": ours.ws_block(), **mempool_frame(2, mined=[w1])})
    await sink.wait(2)
    bogus = {"id": "ab" * 32, "height": 902, "previousblockhash": "cd" * 32, "timestamp": 1}
    await mempool_server.send({"block": bogus, **mempool_frame(3)})
    async with asyncio.timeout(10):
        while runner.snapshot()["block_scans"]["block_scans_abandoned"] < 1:
            await asyncio.sleep(0.02)
    runner.stop()
    await task
    assert [e["kind"] for e in sink.events] == ["seen", "confirmed"]  # no "reorged"
    assert runner.tracker.hashes[901] == ours.hash
    assert runner.snapshot()["rest"]["failures"]["block"]["http_404"] >= 8
