"""Honest resync after a reconnect, against a real local server speaking the mempool.space
WebSocket protocol and REST API, for both server behaviours (issue 13):

- v3.4 and later leave txids no longer in the mempool out of the ``tracked-txs`` answer;
- v3.0 to v3.3 answer ``confirmed: true`` for any absent txid (no block beside it).

Three real whales of block 277647 are pending when the connection drops: one is evicted, one
replaced (the replacement spends its first input), one still in the mempool.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest
from ingest_support import Collector, MempoolServer, as_unconfirmed, mempool_frame, whales_277647

from detection.ingest.rest import RestClient
from detection.ingest.runner import IngestRunner, PendingWhale
from detection.ingest.sources.live import LiveSource

NEW = "ee" * 32


def replacement_of(whale: dict) -> dict:
    tx = dict(whale, txid=NEW, fee=whale["fee"] + 12_345, status={"confirmed": False})
    vout = [dict(o) for o in whale["vout"]]
    vout[-1]["value"] -= 12_345
    tx["vout"] = vout
    return tx


def start(server: MempoolServer, **options):
    source = LiveSource(server.url, use_env_proxy=False, base_delay=0.05)
    rest = RestClient(source.rest_base, use_env_proxy=False, backoff_base=0.01)
    sink = Collector()
    runner = IngestRunner(
        source, sink, rss_reader=None, resync_rest=rest, resync_grace_s=0.2, **options
    )
    return source, rest, runner, sink


@pytest.mark.parametrize("server_version", ["v3.4+", "v3.0-3.3"])
async def test_evicted_ends_dropped_replaced_ends_replaced(
    mempool_server: MempoolServer, server_version: str
):
    evicted, replaced, staying = (as_unconfirmed(t) for t in whales_277647())
    new_tx = replacement_of(replaced)
    first = replaced["vin"][0]
    mempool_server.rest_txs[NEW] = new_tx
    mempool_server.rest_outspends[(first["txid"], first["vout"])] = {
        "spent": True,
        "txid": NEW,
        "vin": 0,
        "status": {"confirmed": False},
    }
    source, rest, runner, sink = start(mempool_server)
    task = asyncio.create_task(runner.run())
    await mempool_server.wait_messages(0, 2)
    await mempool_server.send(mempool_frame(1, added=[evicted, replaced, staying]))
    await sink.wait(3)
    await mempool_server.current.close()
    messages = await mempool_server.wait_messages(1, 3)
    tracked = orjson.loads(messages[2])["track-txs"]
    # The most valuable first: 927 BTC, 133.3 BTC, 103 BTC.
    assert tracked == [replaced["txid"], staying["txid"], evicted["txid"]]
    answer = {staying["txid"]: {"confirmed": False, "position": {"block": 0, "vsize": 100}}}
    if server_version == "v3.0-3.3":
        answer[evicted["txid"]] = {"confirmed": True}
        answer[replaced["txid"]] = {"confirmed": True}
    await mempool_server.send({"tracked-txs": answer})
    events = await sink.wait(5)
    await asyncio.sleep(0.3)  # nothing more may come (the staying whale is not checked)
    runner.stop()
    await task
    later = events[3:]
    by_kind = {e["kind"]: e for e in later}
    assert sorted(by_kind) == ["dropped", "replaced"] and len(later) == 2
    assert by_kind["dropped"]["txid"] == evicted["txid"] and by_kind["dropped"]["seq"] == 2
    assert by_kind["replaced"]["replaced_txid"] == replaced["txid"]
    assert by_kind["replaced"]["replacing_txid"] == NEW
    assert by_kind["replaced"]["tx"]["txid"] == NEW  # fetched: the event carries it
    assert set(runner.tracker.pending) == {staying["txid"], NEW}
    checked = [p for p in mempool_server.rest_requests if p.endswith("/status")]
    assert sorted(checked) == sorted(f"/api/tx/{t['txid']}/status" for t in (evicted, replaced))
    stats = runner.snapshot()
    assert stats["resync"]["dropped"] == 1 and stats["resync"]["replaced"] == 1
    assert stats["untrusted_confirmations"] == (2 if server_version == "v3.0-3.3" else 0)


async def test_confirmed_while_away_is_confirmed_at_the_returned_block(
    mempool_server: MempoolServer,
):
    whale = whales_277647()[0]
    mempool_server.rest_status[whale["txid"]] = whale["status"]  # the real block 277647
    source, rest, runner, sink = start(mempool_server)
    runner.restore_pending([PendingWhale(chain_txid=whale["txid"], txid=whale["txid"], last_seq=1)])
    task = asyncio.create_task(runner.run())
    await mempool_server.wait_messages(0, 3)
    # v3.0-3.3: "confirmed" with no block beside it; not trusted, checked.
    await mempool_server.send({"tracked-txs": {whale["txid"]: {"confirmed": True}}})
    [event] = await sink.wait(1)
    runner.stop()
    await task
    assert event["kind"] == "confirmed" and event["seq"] == 2
    assert event["block"] == {
        "height": 277647,
        "hash": whale["status"]["block_hash"],
        "time": whale["status"]["block_time"],
    }


async def test_restored_whale_without_inputs_is_not_guessed(mempool_server: MempoolServer):
    source, rest, runner, sink = start(mempool_server)
    runner.restore_pending([PendingWhale(chain_txid="ab" * 32, txid="ab" * 32, last_seq=1)])
    task = asyncio.create_task(runner.run())
    await mempool_server.wait_messages(0, 3)
    async with asyncio.timeout(5):
        while runner.snapshot()["resync"].get("unknown_inputs") != 1:
            await asyncio.sleep(0.02)
    runner.stop()
    await task
    assert sink.events == [] and "ab" * 32 in runner.tracker.pending


async def test_restored_whale_with_its_first_input_is_dropped_when_unspent(
    mempool_server: MempoolServer,
):
    whale = whales_277647()[1]
    first = (whale["vin"][0]["txid"], whale["vin"][0]["vout"])
    source, rest, runner, sink = start(mempool_server)
    runner.restore_pending(
        [PendingWhale(chain_txid=whale["txid"], txid=whale["txid"], last_seq=3, first_input=first)]
    )
    task = asyncio.create_task(runner.run())
    [event] = await sink.wait(1)
    runner.stop()
    await task
    assert event["kind"] == "dropped" and event["seq"] == 4
    assert mempool_server.rest_requests == [
        f"/api/tx/{whale['txid']}/status",
        f"/api/tx/{first[0]}/outspend/{first[1]}",
    ]


async def test_more_than_100_pending_track_the_most_valuable(mempool_server: MempoolServer):
    source, rest, runner, sink = start(mempool_server)
    runner.restore_pending(
        [
            PendingWhale(chain_txid=f"{i:064x}", txid=f"{i:064x}", last_seq=1, value=i * 10**8)
            for i in range(1, 151)
        ]
    )
    task = asyncio.create_task(runner.run())
    messages = await mempool_server.wait_messages(0, 3)
    runner.stop()
    await task
    tracked = orjson.loads(messages[2])["track-txs"]
    assert tracked == [f"{i:064x}" for i in range(150, 50, -1)]
    assert runner.snapshot()["track_txs_overflow"] == 50


async def test_hostile_status_answers_leave_the_whale_pending(mempool_server: MempoolServer):
    whale = whales_277647()[1]
    first = (whale["vin"][0]["txid"], whale["vin"][0]["vout"])
    status_path = f"/api/tx/{whale['txid']}/status"
    outspend_path = f"/api/tx/{first[0]}/outspend/{first[1]}"
    html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    mempool_server.rest_faults[status_path] = [(200, html, {"Content-Type": "text/html"})]
    source, rest, runner, sink = start(mempool_server)
    rest.retries = 0
    runner.restore_pending(
        [PendingWhale(chain_txid=whale["txid"], txid=whale["txid"], last_seq=1, first_input=first)]
    )
    task = asyncio.create_task(runner.run())
    async with asyncio.timeout(5):
        while runner.snapshot()["resync"].get("unresolved") != 1:
            await asyncio.sleep(0.02)
    # Reconnect: the status is a 404 now, the outspend answers 500, then a redirect.
    mempool_server.rest_faults[outspend_path] = [
        (500, "oops", {}),
        (302, "", {"Location": "http://169.254.169.254/"}),
    ]
    await mempool_server.current.close()
    async with asyncio.timeout(5):
        while runner.snapshot()["resync"].get("unresolved") != 2:
            await asyncio.sleep(0.02)
    await mempool_server.current.close()
    async with asyncio.timeout(5):
        while runner.snapshot()["resync"].get("unresolved") != 3:
            await asyncio.sleep(0.02)
    # The next time the answers are sound: unspent, so dropped.
    await mempool_server.current.close()
    [event] = await sink.wait(1)
    runner.stop()
    await task
    assert event["kind"] == "dropped" and event["seq"] == 2
    assert rest.snapshot()["failures"] == {
        "tx_status": {"bad_json": 1, "http_404": 3},
        "outspend": {"http_500": 1, "redirect": 1},
    }
    assert runner.snapshot()["processing_errors"] == 0
