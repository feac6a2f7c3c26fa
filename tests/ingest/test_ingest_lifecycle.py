"""Whale lifecycle events from real frame sequences."""

from __future__ import annotations

import orjson
import pytest
from ingest_support import (
    BLOCK_890448,
    MEMPOOL,
    TX01,
    TX02,
    as_unconfirmed,
    feed,
    load,
    make_runner,
    mempool_frame,
    whales_277647,
    whales_702861,
)

from detection.txshape import WhaleTx

HASH_277647 = "0000000000000000054a714e580b16c583701712ab91060e92dbde6eb1e052a8"
OTHER_HASH = "00000000000000000000000000000000000000000000000000000000deadbeef"
BLOCK_277647 = {"id": HASH_277647, "height": 277_647, "timestamp": 1_388_400_000}


def kinds(events):
    return [e["kind"] for e in events]


def test_real_rbf_position_confirmation_sequence():
    """details_rbf: tx01 replaced by tx02, tx02 projected in block 0, confirmed in 890448.
    The two txs move ~49,000 sats, so the whale floor is lowered to 40,000 sats."""
    runner = make_runner(whale_min_sats=40_000)
    tx01 = load(MEMPOOL / "tx01_api_cached.json")
    tx02 = load(MEMPOOL / "tx02_api_tx.json")
    events = feed(runner, (MEMPOOL / "tx01_ws_blocks_01.json").read_bytes(), 100.0)
    assert events == []
    seen = feed(runner, mempool_frame(1, added=[tx01]), 101.0)
    assert kinds(seen) == ["seen"]
    assert seen[0]["txid"] == TX01 and seen[0]["chain_txid"] == TX01 and seen[0]["seq"] == 1
    # The real tx carries `position` (newer than the last mempool-blocks): the server's word.
    assert seen[0]["projection"]["basis"] == "position"
    assert seen[0]["projection"]["projected_block"] == 0
    assert seen[0]["projection"]["tip_height"] == 890_447  # newest of the real `blocks` list
    assert WhaleTx.from_json(seen[0]["tx"]).fee == 606

    replaced = feed(
        runner,
        mempool_frame(2, added=[tx02], removed=[TX01], replaced=[{"replaced": TX01, "by": tx02}]),
        102.0,
    )
    assert kinds(replaced) == ["replaced"]
    event = replaced[0]
    assert (event["replaced_txid"], event["replacing_txid"], event["txid"]) == (TX01, TX02, TX02)
    assert event["chain_txid"] == TX01 and event["seq"] == 2
    assert event["changes"]["fee"] == [606, 960]
    assert event["tx"]["txid"] == TX02

    # The real txReplaced / txPosition / mempool-blocks frames that followed.
    for name in ("tx01_ws_tx_replaced", "tx02_ws_tx_position", "tx02_ws_mempool_blocks_01"):
        assert feed(runner, (MEMPOOL / f"{name}.json").read_bytes(), 103.0) == []
    assert runner.tracker.pending[TX02].server_position == 0
    assert runner.tracker.pending_txids() == [TX02]

    confirmed = feed(runner, (MEMPOOL / "tx02_ws_block.json").read_bytes(), 110.0)
    assert kinds(confirmed) == ["confirmed"]
    assert confirmed[0]["block"] == {"height": 890_448, "hash": BLOCK_890448, "time": 1_743_541_850}
    assert confirmed[0]["chain_txid"] == TX01 and confirmed[0]["seq"] == 3
    assert runner.tracker.pending == {}
    for event in seen + replaced + confirmed:
        orjson.dumps(event)  # plain JSON


def test_mined_before_block_frame_and_zero_fee_whales():
    runner = make_runner()
    whales = [as_unconfirmed(t) for t in whales_277647()]
    seen = feed(runner, mempool_frame(1, added=whales), 10.0)
    assert kinds(seen) == ["seen"] * 3
    by_txid = {e["txid"]: e for e in seen}
    zero_fee = by_txid["5143ba5524d21b646de5cd5a1ab6ee7b7823a59c87a347d3b5339e9f977e7dcd"]
    assert zero_fee["tx"]["fee"] == 0 and zero_fee["tx"]["effective_fee_rate"] == 0.0
    assert zero_fee["projection"]["basis"] == "local"
    assert zero_fee["projection"]["fee_percentile"] == 0.0  # nobody pays less than zero
    # `mined` first, the `block` frame after: confirmed once the block is known.
    assert feed(runner, mempool_frame(2, mined=[t["txid"] for t in whales]), 11.0) == []
    confirmed = feed(runner, {"block": BLOCK_277647}, 11.5)
    assert kinds(confirmed) == ["confirmed"] * 3
    assert {e["block"]["height"] for e in confirmed} == {277_647}
    assert {e["block"]["hash"] for e in confirmed} == {HASH_277647}


def test_whales_without_prevouts_or_fee():
    runner = make_runner()
    seen = feed(runner, mempool_frame(1, added=whales_702861()), 5.0)
    assert kinds(seen) == ["seen"] * 4
    mega = next(e for e in seen if e["txid"].startswith("75e4e7fc"))
    assert sum(o[0] for o in mega["tx"]["outputs"]) == 2_471_519_546_778
    assert mega["tx"]["fee"] is None
    assert all(i[3] is None for i in mega["tx"]["inputs"])
    assert mega["projection"]["fee_percentile"] is None


def test_dropped_after_grace_unless_replaced():
    runner = make_runner(removal_grace_s=5.0, removal_grace_updates=2)
    first, second, third = (as_unconfirmed(t) for t in whales_277647())
    feed(runner, mempool_frame(1, added=[first, second]), 100.0)
    assert feed(runner, mempool_frame(2, removed=[first["txid"], second["txid"]]), 101.0) == []
    # mempool.space may announce the replacement in a later update than the removal.
    replacement = dict(third)
    events = feed(
        runner,
        mempool_frame(
            3, added=[replacement], replaced=[{"replaced": first["txid"], "by": replacement}]
        ),
        103.0,
    )
    assert kinds(events) == ["replaced"]
    dropped = feed(runner, mempool_frame(4), 106.5)
    assert kinds(dropped) == ["dropped"]
    assert dropped[0]["txid"] == second["txid"] and dropped[0]["reasons"] == ["removed"]
    assert dropped[0]["seq"] == 2


def test_drop_waits_for_enough_mempool_updates():
    runner = make_runner(removal_grace_s=5.0, removal_grace_updates=3)
    whale = as_unconfirmed(whales_277647()[0])
    feed(runner, mempool_frame(1, added=[whale]), 100.0)
    feed(runner, mempool_frame(2, removed=[whale["txid"]]), 101.0)
    # 20 s later but only one mempool update since: a replacement may still be announced.
    assert feed(runner, mempool_frame(3), 121.0) == []
    assert feed(runner, mempool_frame(4), 122.0) == []
    assert kinds(feed(runner, mempool_frame(5), 123.0)) == ["dropped"]
    # A stalled feed: the heartbeat drops it after 12 graces all the same.
    other = as_unconfirmed(whales_277647()[1])
    feed(runner, mempool_frame(6, added=[other]), 200.0)
    feed(runner, mempool_frame(7, removed=[other["txid"]]), 201.0)
    assert runner.tracker.expire(230.0) == []
    assert kinds(runner.tracker.expire(262.0)) == ["dropped"]


def dropped_whale(runner, whale):
    feed(runner, mempool_frame(1, added=[whale]), 100.0)
    feed(runner, mempool_frame(2, removed=[whale["txid"]]), 101.0)
    events = feed(runner, mempool_frame(3), 110.0)
    assert kinds(events) == ["dropped"] and events[0]["seq"] == 2


def test_dropped_then_mined_continues_the_chain():
    runner = make_runner(removal_grace_s=5.0, removal_grace_updates=1)
    whale = as_unconfirmed(whales_277647()[0])
    dropped_whale(runner, whale)
    events = feed(runner, {"block": BLOCK_277647, **mempool_frame(4, mined=[whale["txid"]])}, 200.0)
    assert kinds(events) == ["confirmed"]
    assert events[0]["seq"] == 3 and events[0]["chain_txid"] == whale["txid"]
    assert events[0]["block"]["height"] == 277_647


def test_dropped_then_rebroadcast_continues_the_chain():
    runner = make_runner(removal_grace_s=5.0, removal_grace_updates=1)
    whale = as_unconfirmed(whales_277647()[0])
    dropped_whale(runner, whale)
    events = feed(runner, mempool_frame(4, added=[whale]), 200.0)
    assert kinds(events) == ["seen"] and events[0]["seq"] == 3  # not a second seq 1
    assert whale["txid"] in runner.tracker.pending


def test_late_replacement_continues_the_chain():
    runner = make_runner(removal_grace_s=5.0, removal_grace_updates=1)
    whale, replacement = (as_unconfirmed(t) for t in whales_277647()[:2])
    dropped_whale(runner, whale)
    events = feed(
        runner,
        mempool_frame(
            4, added=[replacement], replaced=[{"replaced": whale["txid"], "by": replacement}]
        ),
        200.0,
    )
    assert kinds(events) == ["replaced"]
    assert events[0]["seq"] == 3 and events[0]["chain_txid"] == whale["txid"]
    assert events[0]["replacing_txid"] == replacement["txid"]


def test_reorg_puts_confirmed_whales_back_to_pending():
    runner = make_runner()
    whales = [as_unconfirmed(t) for t in whales_277647()[:2]]
    feed(runner, mempool_frame(1, added=whales), 1.0)
    feed(runner, {"block": BLOCK_277647, **mempool_frame(2, mined=[whales[0]["txid"]])}, 2.0)
    assert list(runner.tracker.pending) == [whales[1]["txid"]]
    competing = {"id": OTHER_HASH, "height": 277_647, "timestamp": 1_388_400_100}
    reorged = feed(runner, {"block": competing, **mempool_frame(3)}, 3.0)
    assert kinds(reorged) == ["reorged"]
    assert reorged[0]["txid"] == whales[0]["txid"]
    assert reorged[0]["block"]["hash"] == HASH_277647  # the orphaned block
    assert reorged[0]["seq"] == 3
    assert runner.tracker.reorgs == 1
    assert set(runner.tracker.pending) == {w["txid"] for w in whales}
    next_block = {"id": "1" * 64, "height": 277_648, "timestamp": 1_388_400_700}
    again = feed(runner, {"block": next_block, **mempool_frame(4, mined=[whales[0]["txid"]])}, 4.0)
    assert kinds(again) == ["confirmed"] and again[0]["block"]["height"] == 277_648
    assert again[0]["seq"] == 4


def test_tracked_txs_resync_answer():
    runner = make_runner()
    whales = [as_unconfirmed(t) for t in whales_277647()]
    feed(runner, {"block": BLOCK_277647}, 1.0)
    feed(runner, mempool_frame(1, added=whales), 2.0)
    a, b, c = (w["txid"] for w in whales)
    new_txid = "ab" * 32
    answer = {
        "tracked-txs": {
            a: {"confirmed": True},
            b: {"replacedBy": new_txid},
            c: {"position": {"block": 2, "vsize": 5000}, "cpfp": {"effectiveFeePerVsize": 30.5}},
        }
    }
    events = feed(runner, answer, 3.0)
    # "confirmed" without a block beside it is not trusted (servers before v3.4 answer it for
    # any txid they no longer hold): the resync checks it over REST instead.
    assert sorted(kinds(events)) == ["replaced", "updated"]
    assert runner.tracker.untrusted_confirmations == 1
    by_kind = {e["kind"]: e for e in events}
    assert by_kind["replaced"]["replacing_txid"] == new_txid and by_kind["replaced"]["tx"] is None
    assert by_kind["updated"]["reasons"] == ["cpfp"]
    assert by_kind["updated"]["changes"]["effective_fee_rate"][1] == 30.5
    assert by_kind["updated"]["projection"]["basis"] == "position"
    assert by_kind["updated"]["projection"]["projected_block"] == 2
    assert set(runner.tracker.pending_txids()) == {new_txid, c, a}
    # Beside the block it was mined in, the answer is trusted.
    next_block = {"id": "1" * 64, "height": 277_648, "timestamp": 1_388_400_700}
    events = feed(runner, {"block": next_block, "tracked-txs": {a: {"confirmed": True}}}, 4.0)
    confirmed = [e for e in events if e["txid"] == a]
    assert kinds(confirmed) == ["confirmed"] and confirmed[0]["block"]["height"] == 277_648
    # c's server position is a block old now (issue 14: a block without a fresh position ends
    # the server basis), so c alone moves to the local basis.
    assert [(e["txid"], e["kind"]) for e in events if e["txid"] != a] == [(c, "updated")]


def test_cpfp_child_lifts_a_pending_whale():
    runner = make_runner()
    parent = as_unconfirmed(whales_277647()[0])  # d3852055: fee 50,000 on 4,223 vB
    feed(runner, mempool_frame(1, added=[parent]), 1.0)
    child = {
        "txid": "cd" * 32,
        "weight": 800,
        "fee": 200_000,
        "vin": [{"txid": parent["txid"], "vout": 0}],
        "vout": [{"value": 1_000}],
    }
    events = feed(runner, mempool_frame(2, added=[child]), 2.0)
    assert kinds(events) == ["updated"]
    assert events[0]["reasons"] == ["cpfp"]
    expected = (50_000 + 200_000) / (4_223 + 200)
    assert events[0]["changes"]["effective_fee_rate"] == [
        pytest.approx(50_000 / 4_223),
        pytest.approx(expected),
    ]
    assert events[0]["tx"]["effective_fee_rate"] == pytest.approx(expected)


def test_event_contract_keys():
    runner = make_runner()
    events = feed(runner, mempool_frame(1, added=[as_unconfirmed(whales_277647()[0])]), 1.0)
    assert set(events[0]) == {
        "event_id",
        "kind",
        "txid",
        "chain_txid",
        "seq",
        "observed_at",
        "frame_received_at",
        "source",
        "tx",
        "block",
        "replaced_txid",
        "replacing_txid",
        "reasons",
        "changes",
        "projection",
    }
    assert set(events[0]["projection"]) == {
        "projected_block",
        "fee_percentile",
        "tip_height",
        "next_block_median_fee_rate",
        "next_block_floor_fee_rate",
        "purge_floor_fee_rate",
        "made_at",
        "basis",
    }
    assert events[0]["frame_received_at"] == 1.0
