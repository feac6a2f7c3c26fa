"""Block scans against a real local server speaking the mempool.space WebSocket protocol and
REST API, answering from the real blocks 277647 and 702861 (issue 13)."""

from __future__ import annotations

import asyncio

import pytest
from ingest_support import (
    BLOCK_277647,
    BLOCK_702861,
    Collector,
    MempoolServer,
    RestBlock,
    as_unconfirmed,
    esplora_txs_277647,
    mempool_frame,
    next_block_of_whales_702861,
    raw_block_277647,
    raw_block_702861,
    whales_277647,
    whales_702861,
)

from detection.ingest.blockscan import BlockScanFailed, BlockScanner
from detection.ingest.rest import RestClient
from detection.ingest.runner import IngestRunner, PendingWhale
from detection.ingest.sources.live import LiveSource

FLOOR = 100 * 100_000_000
WHALES_277647 = {tx["txid"]: tx for tx in whales_277647()}
PREVIOUS_277647 = "0000000000000000c86826ab2fbe4639ec413004955a36e77c2267988579e653"


def serve_277647(server: MempoolServer, *, with_txs: bool = True) -> RestBlock:
    block = RestBlock(raw_block_277647(), 277647, esplora_txs_277647())
    server.rest_blocks[block.hash] = block
    if with_txs:
        server.rest_txs.update(WHALES_277647)
    return block


def client(server: MempoolServer, **options) -> RestClient:
    options.setdefault("backoff_base", 0.01)
    return RestClient(f"http://127.0.0.1:{server.port}/api", use_env_proxy=False, **options)


def never_seen(_txid: str) -> bool:
    return False


async def test_summary_then_one_tx_request_per_unseen_whale(mempool_server: MempoolServer):
    serve_277647(mempool_server)
    rest = client(mempool_server)
    seen = "5143ba5524d21b646de5cd5a1ab6ee7b7823a59c87a347d3b5339e9f977e7dcd"
    scan = await BlockScanner(rest, FLOOR).scan(BLOCK_277647, is_known=lambda t: t == seen)
    assert scan.method == "summary"
    assert scan.known == [seen]
    assert set(scan.unseen) == set(WHALES_277647) - {seen}
    assert all(scan.unseen[t] == WHALES_277647[t] for t in scan.unseen)  # with prevouts
    assert scan.requests == 1 + 2
    assert mempool_server.rest_requests[0] == f"/api/v1/block/{BLOCK_277647}/summary"
    assert rest.snapshot() == {"requests": {"block_summary": 1, "tx": 2}, "failures": {}}


async def test_raw_block_when_there_is_no_summary(mempool_server: MempoolServer):
    serve_277647(mempool_server)
    mempool_server.rest_missing.add("summary")
    rest = client(mempool_server)
    scan = await BlockScanner(rest, FLOOR).scan(BLOCK_277647, is_known=never_seen)
    assert scan.method == "raw"
    assert scan.unseen == WHALES_277647
    assert scan.requests == 1 + 1 + 3  # the 404 summary, the raw block, the 3 whales
    assert rest.failures == {"block_summary": {"http_404": 1}}  # 404 is final: no retry


async def test_raw_segwit_block_without_prevouts_keeps_inputs_unknown(
    mempool_server: MempoolServer,
):
    block = RestBlock(raw_block_702861(), 702861)
    mempool_server.rest_blocks[block.hash] = block
    mempool_server.rest_missing.update({"summary", "tx"})
    scan = await BlockScanner(client(mempool_server), FLOOR).scan(BLOCK_702861, is_known=never_seen)
    assert scan.method == "raw"
    assert scan.without_prevouts == 4
    expected = {tx["txid"]: tx for tx in whales_702861()}
    assert set(scan.unseen) == set(expected)
    for txid, tx in scan.unseen.items():
        assert tx["fee"] is None and all(i["prevout"] is None for i in tx["vin"])
        assert [o["value"] for o in tx["vout"]] == [o["value"] for o in expected[txid]["vout"]]
        assert [o.get("scriptpubkey_address") for o in tx["vout"]] == [
            o.get("scriptpubkey_address") for o in expected[txid]["vout"]
        ]


async def test_txids_and_only_the_pages_holding_unknown_txs(mempool_server: MempoolServer):
    block = serve_277647(mempool_server, with_txs=False)
    mempool_server.rest_missing.update({"summary", "raw"})
    # We held every tx of the block but the three whales (indexes 4, 10 and 209) in our view.
    mined_known = set(block.txids) - set(WHALES_277647)
    rest = client(mempool_server)
    scan = await BlockScanner(rest, FLOOR).scan(
        BLOCK_277647, is_known=never_seen, mined_known=mined_known
    )
    assert scan.method == "txids"
    assert scan.unseen == WHALES_277647  # the pages carry prevouts: no /api/tx needed
    pages = [p for p in mempool_server.rest_requests if "/txs/" in p]
    assert pages == [f"/api/block/{BLOCK_277647}/txs/0", f"/api/block/{BLOCK_277647}/txs/200"]
    assert scan.requests == 2 + 1 + 2


HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


@pytest.mark.parametrize(
    ("fault", "endpoint", "reason"),
    [
        ((200, raw_block_277647()[:70_000], {}), "block_raw", "truncated"),
        ((200, raw_block_702861(), {}), "block_raw", "wrong_hash"),
        ((200, HTML, {"Content-Type": "text/html"}), "block_raw", "wrong_hash"),
        ((500, "Internal Server Error", {}), "block_raw", "http_500"),
        ((429, "Too Many Requests", {"Retry-After": "1"}), "block_raw", "http_429"),
        ((302, "", {"Location": "http://169.254.169.254/"}), "block_raw", "redirect"),
    ],
)
async def test_hostile_raw_answers_are_counted_and_retried(
    mempool_server: MempoolServer, fault, endpoint, reason
):
    serve_277647(mempool_server)
    mempool_server.rest_missing.update({"summary", "txids"})
    path = f"/api/block/{BLOCK_277647}/raw"
    # Served twice: the client's own retries (transient errors) or the scan's next try.
    mempool_server.rest_faults[path] = [fault, fault]
    rest = client(mempool_server, retries=0)
    scanner = BlockScanner(rest, FLOOR)
    with pytest.raises(BlockScanFailed):
        await scanner.scan(BLOCK_277647, is_known=never_seen)
    assert rest.failures[endpoint][reason] == 1
    with pytest.raises(BlockScanFailed):
        await scanner.scan(BLOCK_277647, is_known=never_seen)
    scan = await scanner.scan(BLOCK_277647, is_known=never_seen)
    assert scan.method == "raw" and scan.unseen == WHALES_277647
    assert rest.failures[endpoint][reason] == 2


async def test_429_waits_for_retry_after_and_5xx_backs_off(mempool_server: MempoolServer):
    serve_277647(mempool_server)
    path = f"/api/v1/block/{BLOCK_277647}/summary"
    mempool_server.rest_faults[path] = [
        (429, "Too Many Requests", {"Retry-After": "1"}),
        (503, HTML, {"Content-Type": "text/html"}),
    ]
    rest = client(mempool_server, retries=2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    scan = await BlockScanner(rest, FLOOR).scan(BLOCK_277647, is_known=never_seen)
    assert loop.time() - started >= 1.0  # Retry-After honoured
    assert scan.method == "summary"
    assert rest.failures == {"block_summary": {"http_429": 1, "http_503": 1}}
    assert rest.requests["block_summary"] == 3


async def test_html_summary_falls_back_to_the_raw_block(mempool_server: MempoolServer):
    serve_277647(mempool_server)
    path = f"/api/v1/block/{BLOCK_277647}/summary"
    mempool_server.rest_faults[path] = [(200, HTML, {"Content-Type": "text/html"})]
    rest = client(mempool_server)
    scan = await BlockScanner(rest, FLOOR).scan(BLOCK_277647, is_known=never_seen)
    assert scan.method == "raw" and scan.unseen == WHALES_277647
    assert rest.failures == {"block_summary": {"bad_json": 1}}


# -- through the ingest: a real WebSocket + REST server --------------------------------------


def ws_block(block: RestBlock) -> dict:
    return block.ws_block()


def previous_block() -> dict:
    return {"id": PREVIOUS_277647, "height": 277646, "timestamp": 1388366000}


async def start_runner(server: MempoolServer, **options):
    source = LiveSource(server.url, use_env_proxy=False, base_delay=0.05, rest_timeout=2.0)
    scanner = BlockScanner(source.rest, FLOOR)
    source.rest.backoff_base = 0.01
    sink = Collector()
    options.setdefault("scan_retry_base", 0.05)
    runner = IngestRunner(source, sink, rss_reader=None, block_scanner=scanner, **options)
    return source, runner, sink


async def test_whale_only_ever_in_a_block_is_confirmed_unseen(mempool_server: MempoolServer):
    block = serve_277647(mempool_server)
    source, runner, sink = await start_runner(mempool_server)
    task = asyncio.create_task(runner.run())
    await mempool_server.wait_messages(0, 2)
    # A first start: the blocks listed on connecting set the position, they are not scanned.
    await mempool_server.send({"blocks": [previous_block()]})
    await mempool_server.send(mempool_frame(1))
    await mempool_server.send({"block": ws_block(block), **mempool_frame(2, mined=[])})
    events = await sink.wait(3)
    runner.stop()
    await task
    assert [e["kind"] for e in events] == ["confirmed"] * 3
    assert {e["txid"] for e in events} == set(WHALES_277647)
    for event in events:
        assert event["seq"] == 1 and event["chain_txid"] == event["txid"]
        assert event["block"] == {"height": 277647, "hash": BLOCK_277647, "time": 1388367102}
        want = WHALES_277647[event["txid"]]
        assert [o[0] for o in event["tx"]["outputs"]] == [o["value"] for o in want["vout"]]
        assert event["tx"]["fee"] == want["fee"]
    stats = runner.snapshot()
    assert stats["block_scans"]["blocks_scanned"] == 1
    assert stats["block_scans"]["block_only_whales"] == 3
    assert stats["block_scans"]["last_scanned_hash"] == BLOCK_277647
    assert stats["block_scans"]["last_scan_requests"] == 4
    assert stats["rest"]["requests"] == {"block_summary": 1, "tx": 3}
    assert [p for p in mempool_server.rest_requests if "277647" in p or "block" in p] == [
        f"/api/v1/block/{BLOCK_277647}/summary"
    ]


async def test_block_mined_while_disconnected_is_scanned_on_reconnect(
    mempool_server: MempoolServer,
):
    """The next connection's `blocks` list already has the block; no `mined` frame comes."""
    block = serve_277647(mempool_server)
    seen = whales_277647()[2]
    saved: list = []
    loop = asyncio.get_running_loop()
    position_saved = asyncio.Event()

    def save(scanned) -> None:  # runs in a worker thread, after the block's events are out
        saved.append(scanned)
        loop.call_soon_threadsafe(position_saved.set)

    source, runner, sink = await start_runner(
        mempool_server,
        last_scanned_block=(277646, PREVIOUS_277647),
        on_block_scanned=save,
    )
    task = asyncio.create_task(runner.run())
    await mempool_server.wait_messages(0, 2)
    await mempool_server.send({"blocks": [previous_block()]})
    small = esplora_txs_277647()[1]  # not a whale; mined in the same block
    await mempool_server.send(mempool_frame(1, added=[as_unconfirmed(seen), as_unconfirmed(small)]))
    await sink.wait(1)
    assert small["txid"] in runner.state and seen["txid"] in runner.state
    await mempool_server.current.close()  # the block is mined while we are away
    await mempool_server.wait_messages(1, 3)  # want, track-mempool, track-txs
    await mempool_server.send({"blocks": [previous_block(), ws_block(block)]})
    events = await sink.wait(4)
    await asyncio.wait_for(position_saved.wait(), timeout=10)
    runner.stop()
    await task
    assert [e["kind"] for e in events] == ["seen", "confirmed", "confirmed", "confirmed"]
    confirmed = {e["txid"]: e for e in events[1:]}
    assert set(confirmed) == set(WHALES_277647)
    assert all(e["block"]["height"] == 277647 for e in confirmed.values())
    assert confirmed[seen["txid"]]["seq"] == 2  # the seen whale's chain continues
    assert all(e["seq"] == 1 for t, e in confirmed.items() if t != seen["txid"])
    assert [(b.height, b.hash, b.time) for b in saved] == [(277647, BLOCK_277647, 1388367102)]
    # No ghosts: what the block mined is gone from the mempool model.
    assert small["txid"] not in runner.state and seen["txid"] not in runner.state
    assert runner.snapshot()["block_scans"]["ghosts_cleared"] == 2
    # The seen whale was not fetched again: only the two it had never seen.
    assert sorted(p for p in mempool_server.rest_requests if p.startswith("/api/tx/")) == sorted(
        f"/api/tx/{t}" for t in WHALES_277647 if t != seen["txid"]
    )


async def test_missed_blocks_are_caught_up_by_height_oldest_first(
    mempool_server: MempoolServer,
):
    block = serve_277647(mempool_server)
    # A stand-in for the next block: 702861's real whales on top of 277647 (header made here).
    later = RestBlock(next_block_of_whales_702861(), 277648)
    mempool_server.rest_blocks[later.hash] = later
    status = {"confirmed": True, "block_height": 277648, "block_hash": later.hash}
    mempool_server.rest_txs.update({tx["txid"]: dict(tx, status=status) for tx in whales_702861()})
    restored = PendingWhale(chain_txid="ab" * 32, txid="ab" * 32, last_seq=1)
    source, runner, sink = await start_runner(
        mempool_server, last_scanned_block=(277646, PREVIOUS_277647)
    )
    runner.restore_pending([restored])
    task = asyncio.create_task(runner.run())
    await mempool_server.wait_messages(0, 3)
    await mempool_server.send({"block": ws_block(later), **mempool_frame(1)})
    events = await sink.wait(7)
    runner.stop()
    await task
    heights = [e["block"]["height"] for e in events]
    assert heights == [277647] * 3 + [277648] * 4  # oldest first
    block_requests = [p for p in mempool_server.rest_requests if "block" in p]
    assert block_requests[:3] == [
        "/api/block-height/277647",
        f"/api/block/{block.hash}",
        f"/api/v1/block/{block.hash}/summary",
    ]
    stats = runner.snapshot()["block_scans"]
    assert stats["catch_up_blocks"] == 1 and stats["blocks_scanned"] == 2
    assert runner.snapshot()["rest"]["failures"] == {}
    assert (stats["last_scanned_height"], stats["last_scanned_hash"]) == (277648, later.hash)


async def test_catch_up_is_bounded_and_the_gap_counted(mempool_server: MempoolServer):
    block = serve_277647(mempool_server)
    source, runner, sink = await start_runner(
        mempool_server, last_scanned_block=(277600, "cd" * 32), catch_up_max_blocks=0
    )
    task = asyncio.create_task(runner.run())
    await mempool_server.wait_messages(0, 2)
    await mempool_server.send({"block": ws_block(block), **mempool_frame(1)})
    await sink.wait(3)
    runner.stop()
    await task
    stats = runner.snapshot()["block_scans"]
    assert stats["catch_up_gap_blocks"] == 46  # 277601 .. 277646, never scanned
    assert stats["blocks_scanned"] == 1


async def test_failed_scans_are_retried_and_never_block_the_reader(
    mempool_server: MempoolServer,
):
    block = serve_277647(mempool_server)
    summary = f"/api/v1/block/{BLOCK_277647}/summary"
    raw = f"/api/block/{BLOCK_277647}/raw"
    txids = f"/api/block/{BLOCK_277647}/txids"
    # Every method fails once (twice for the summary: the client retries a 500 once).
    mempool_server.rest_faults[summary] = [(500, "oops", {}), (500, "oops", {})]
    mempool_server.rest_faults[raw] = [(200, HTML, {"Content-Type": "text/html"})]
    mempool_server.rest_faults[txids] = [(302, "", {"Location": "http://example.com/"})]
    source, runner, sink = await start_runner(mempool_server)
    source.rest.retries = 1
    task = asyncio.create_task(runner.run())
    await mempool_server.wait_messages(0, 2)
    await mempool_server.send({"blocks": [previous_block()]})
    await mempool_server.send({"block": ws_block(block), **mempool_frame(1)})
    whale = as_unconfirmed(whales_277647()[0])
    await mempool_server.send(mempool_frame(2, added=[whale]))  # read while scans fail
    events = await sink.wait(4)
    assert events[0]["kind"] == "seen"
    runner.stop()
    await task
    stats = runner.snapshot()
    assert stats["block_scans"]["block_scan_failures"] == 1
    assert stats["block_scans"]["blocks_scanned"] == 1
    assert stats["rest"]["failures"] == {
        "block_summary": {"http_500": 2},
        "block_raw": {"wrong_hash": 1},
        "block_txids": {"redirect": 1},
    }
    assert stats["processing_errors"] == 0
    # The whale the mempool showed while the scans failed is in the block: its chain goes on.
    assert [e["kind"] for e in events] == ["seen", "confirmed", "confirmed", "confirmed"]
    assert {e["txid"]: e["seq"] for e in events[1:]}[whale["txid"]] == 2


async def test_listed_blocks_beyond_the_bound_are_a_counted_gap(mempool_server: MempoolServer):
    block = serve_277647(mempool_server)
    later = RestBlock(next_block_of_whales_702861(), 277648)
    mempool_server.rest_blocks[later.hash] = later
    mempool_server.rest_missing.add("tx")  # whales from the block's own bytes
    source, runner, sink = await start_runner(
        mempool_server, last_scanned_block=(277646, PREVIOUS_277647), catch_up_max_blocks=0
    )
    task = asyncio.create_task(runner.run())
    await mempool_server.wait_messages(0, 2)
    await mempool_server.send({"blocks": [ws_block(block), ws_block(later)]})
    events = await sink.wait(4)
    runner.stop()
    await task
    assert {e["block"]["height"] for e in events} == {277648}  # 277647 given up
    stats = runner.snapshot()["block_scans"]
    assert stats["catch_up_gap_blocks"] == 1 and stats["blocks_scanned"] == 1
    assert stats["unseen_without_prevouts"] == 4
    assert all(e["tx"]["fee"] is None for e in events)
