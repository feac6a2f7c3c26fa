"""The real ingest command against a local mempool.space stand-in (WebSocket + REST from the
real blocks' bytes), with a real worker and PostgreSQL: a block's whales never seen in the mempool
are recorded, the last scanned block is kept in the database, and after a restart the block
mined while the ingest was down is scanned (issue 13)."""

from __future__ import annotations

import asyncio
import signal
import threading

import pytest

from detection.models import Block, WhaleStatus, WhaleTransaction
from tests.ingest.ingest_support import (
    BLOCK_277647,
    MempoolServer,
    RestBlock,
    esplora_txs_277647,
    next_block_of_whales_702861,
    raw_block_277647,
    whales_277647,
    whales_702861,
)
from tests.support.processes import kill, start_ingest, start_worker, subprocess_env, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PREVIOUS_277647 = "0000000000000000c86826ab2fbe4639ec413004955a36e77c2267988579e653"


def in_block(tx: dict, block: RestBlock) -> dict:
    status = {"confirmed": True, "block_height": block.height, "block_hash": block.hash}
    return dict(tx, status=status)


class ServerThread:
    """A MempoolServer on its own event loop in a thread, driven from the test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = self.call(self._start())

    async def _start(self) -> MempoolServer:
        server = MempoolServer()
        await server.start()
        return server

    def call(self, coroutine, timeout: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def wait_connections(self, count: int) -> None:
        self.call(self.server.wait_connections(count, timeout=30.0), timeout=35.0)

    def send(self, frame: dict) -> None:
        self.call(self.server.send(frame))

    def stop(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_block_only_whales_and_catch_up_after_a_restart(tmp_path):
    peer = ServerThread()
    server = peer.server
    first = RestBlock(raw_block_277647(), 277647, esplora_txs_277647())
    # A stand-in for the next block: 702861's real coinbase and whales on top of 277647 (the
    # header is made here; we hold no real 277648).
    second = RestBlock(next_block_of_whales_702861(), 277648)
    server.rest_blocks.update({first.hash: first, second.hash: second})
    server.rest_txs.update({t["txid"]: t for t in whales_277647()})
    server.rest_txs.update({t["txid"]: in_block(t, second) for t in whales_702861()})
    env = subprocess_env(WHALE_VAR_DIR=str(tmp_path / "var"), WHALE_INGEST_METRICS_PORT="0")
    worker = start_worker(env, tmp_path / "worker.log", name="faults-blockscan")
    try:
        ingest = start_ingest(env, tmp_path / "ingest1.log", server.url)
        try:
            peer.wait_connections(1)
            peer.send({"blocks": [{"id": PREVIOUS_277647, "height": 277646}]})
            peer.send({"block": first.ws_block()})
            wait_until(lambda: WhaleTransaction.objects.count() == 3, 30)
            wait_until(
                lambda: Block.objects.filter(hash=BLOCK_277647, scanned_at__isnull=False).exists(),
                10,
            )
        finally:
            kill(ingest, signal.SIGTERM)
        # Block 277648 is mined while the ingest is down; the next connection lists it.
        ingest = start_ingest(env, tmp_path / "ingest2.log", server.url)
        try:
            peer.wait_connections(2)
            peer.send({"blocks": [first.ws_block(), second.ws_block()]})
            wait_until(lambda: WhaleTransaction.objects.count() == 7, 30)
        finally:
            kill(ingest, signal.SIGTERM)
    finally:
        kill(worker, signal.SIGTERM)
        peer.stop()
    log = (tmp_path / "ingest2.log").read_text(errors="replace")
    assert f"block scans continue after block 277647 {BLOCK_277647}" in log, log
    heights = {}
    for whale in WhaleTransaction.objects.all():
        assert whale.status == WhaleStatus.CONFIRMED and whale.seen_in_mempool is False
        heights[whale.txid] = whale.confirmed_height
    assert heights == {
        **{t["txid"]: 277647 for t in whales_277647()},
        **{t["txid"]: 277648 for t in whales_702861()},
    }
    assert Block.objects.filter(scanned_at__isnull=False).count() == 2
