"""Fee references by name from the real mempool.space frames, and one basis per whale."""

from __future__ import annotations

import pytest
from ingest_support import (
    MEMPOOL,
    as_unconfirmed,
    feed,
    load,
    make_runner,
    mempool_frame,
    whales_277647,
)

from detection.domain.urgency import MEDIUM, context_from_projection, score_urgency


def whale_paying(rate: float) -> dict:
    """A real whale (block 277647) re-priced to ``rate`` sat/vB of its own vsize."""
    tx = as_unconfirmed(whales_277647()[1])
    tx["fee"] = round(rate * tx["weight"] / 4)
    return tx


def test_real_mempool_blocks_give_the_median_floor_and_purge_floor():
    runner = make_runner()
    feed(runner, (MEMPOOL / "mainnet_mempoolInfo.json").read_bytes(), 1.0)
    feed(runner, (MEMPOOL / "tx02_ws_mempool_blocks_01.json").read_bytes(), 2.0)
    references = runner.tracker.fee_references()
    assert references.next_block_median == pytest.approx(2.048, abs=0.001)
    assert references.next_block_floor == pytest.approx(1.083, abs=0.001)
    assert references.purge_floor == pytest.approx(1.305)  # mempoolminfee 0.00001305 BTC/kvB


def test_a_whale_between_the_floor_and_the_median_is_medium_not_high():
    """1.5 sat/vB against floor 1.083 and median 2.048: "medium" (~0.59); judged against the
    floor it scored 0.854, "high", and woke subscriptions asking for urgency >= 0.8."""
    runner = make_runner(whale_min_sats=1)
    feed(runner, (MEMPOOL / "mainnet_mempoolInfo.json").read_bytes(), 1.0)
    feed(runner, (MEMPOOL / "tx02_ws_mempool_blocks_01.json").read_bytes(), 2.0)
    tx = whale_paying(1.5)
    (seen,) = feed(runner, mempool_frame(1, added=[tx]), 3.0)
    projection = seen["projection"]
    assert projection["basis"] == "local" and projection["projected_block"] == 0
    # One tx known locally against 112,686 on the server: no percentile from so little.
    assert projection["fee_percentile"] is None
    assert projection["next_block_median_fee_rate"] == pytest.approx(2.048, abs=0.001)
    assert projection["next_block_floor_fee_rate"] == pytest.approx(1.083, abs=0.001)
    score = score_urgency(
        seen["tx"]["effective_fee_rate"],
        context_from_projection(projection),
        projected_block=projection["projected_block"],
        fee_percentile=projection["fee_percentile"],
    )
    assert score.band == MEDIUM
    assert score.urgency == pytest.approx(0.59, abs=0.01)
    assert not score.may_be_purged


def test_a_whale_under_mempoolminfee_may_be_purged():
    runner = make_runner(whale_min_sats=1)
    feed(runner, (MEMPOOL / "mainnet_mempoolInfo.json").read_bytes(), 1.0)
    feed(runner, (MEMPOOL / "tx02_ws_mempool_blocks_01.json").read_bytes(), 2.0)
    (seen,) = feed(runner, mempool_frame(1, added=[whale_paying(1.2)]), 3.0)
    projection = seen["projection"]
    score = score_urgency(seen["tx"]["effective_fee_rate"], context_from_projection(projection))
    assert score.may_be_purged and score.may_not_confirm_soon


def test_a_tracked_whale_with_a_stable_position_is_not_updated_by_mempool_blocks():
    """Twenty real mempool-blocks frames, each followed by the server's tracked-txs answer with
    the same position: the whale keeps the server's basis and no "updated" event is made."""
    runner = make_runner(whale_min_sats=1)
    tx = whale_paying(1.5)
    txid = tx["txid"]
    (seen,) = feed(runner, mempool_frame(1, added=[tx]), 1.0)
    tracked = {"tracked-txs": {txid: {"position": {"block": 2, "vsize": 50_000}}}}
    # The server's first answer moves the whale from our projection (block 0) to its position.
    (moved,) = feed(runner, tracked, 1.5)
    assert moved["changes"] == {"projected_block": [0, 2]}
    assert moved["projection"]["basis"] == "position"
    blocks_frame = (MEMPOOL / "tx02_ws_mempool_blocks_01.json").read_bytes()
    events = []
    for i in range(20):
        at = 2.0 + i
        events += feed(runner, blocks_frame, at)
        events += feed(runner, tracked, at + 0.5)
    kinds = [e["kind"] for e in events]
    assert "updated" not in kinds, kinds
    chain = runner.tracker.pending[txid]
    assert runner.tracker.projection_for(chain)["basis"] == "position"
    assert chain.projected_block == 2


def test_fee_percentile_is_withheld_while_the_local_mempool_is_incomplete():
    runner = make_runner(whale_min_sats=1)
    info = load(MEMPOOL / "mainnet_mempoolInfo.json")["mempoolInfo"]
    feed(runner, {"mempoolInfo": info}, 1.0)  # the server holds 112,686 txs
    tx = whale_paying(3.0)
    (seen,) = feed(runner, mempool_frame(1, added=[tx]), 2.0)
    assert seen["projection"]["fee_percentile"] is None
    feed(runner, {"mempoolInfo": {**info, "size": 20}}, 3.0)
    chain = runner.tracker.pending[tx["txid"]]
    assert runner.tracker.projection_for(chain)["fee_percentile"] is None  # 1 of 20: incomplete
    feed(runner, {"mempoolInfo": {**info, "size": 1}}, 4.0)
    assert runner.tracker.projection_for(chain)["fee_percentile"] == 0.0
