"""Mempool state: applying frames, memory levels with hysteresis, the never-shed rule."""

from __future__ import annotations

import orjson
from ingest_support import as_unconfirmed, mempool_frame, whales_277647

from detection.ingest.protocol import FrameParser
from detection.ingest.state import MemoryLevel, MemoryPolicy, MempoolState


def filled_state(count: int = 1_000) -> MempoolState:
    state = MempoolState(MemoryPolicy(recovery_hold_s=30.0, shed_cooldown_s=10.0))
    for i in range(count):
        # rate i/10 sat/vB; fee grows with rate so the 100 top-fee txs are also the top-rate ones,
        # except a few low-rate, high-fee giants below.
        state.txs[f"{i:064x}"] = (i * 100, 1_000, i / 10, 1)
    return state


def test_apply_adds_removes_and_keeps_whales():
    parser = FrameParser()
    state = MempoolState()
    whales = [as_unconfirmed(t) for t in whales_277647()]
    state.apply(parser.parse(orjson.dumps(mempool_frame(1, added=whales)), 0.0))
    assert len(state) == 3 and len(state.whales) == 3
    first, second, third = (t["txid"] for t in whales)
    frame = mempool_frame(2, removed=[first], mined=[second])
    state.apply(parser.parse(orjson.dumps(frame), 1.0))
    assert list(state.txs) == [third] and list(state.whales) == [third]


def test_levels_with_hysteresis():
    state = filled_state()
    assert state.update_memory(100, now=0) is MemoryLevel.NORMAL
    assert state.update_memory(399.9, now=1) is MemoryLevel.NORMAL
    assert state.update_memory(400, now=2) is MemoryLevel.WARNING
    assert state.shed_total == 250  # down to 75 %
    # Between recovery and warning marks: still WARNING, no more shedding.
    assert state.update_memory(380, now=3) is MemoryLevel.WARNING
    assert state.shed_total == 250
    assert state.update_memory(520, now=4) is MemoryLevel.CRITICAL
    assert len(state) == int(750 * 0.4)
    # Below critical but above warning: stays CRITICAL until real relief.
    assert state.update_memory(450, now=5) is MemoryLevel.CRITICAL
    assert state.update_memory(340, now=6) is MemoryLevel.RECOVERY
    assert state.update_memory(340, now=20) is MemoryLevel.RECOVERY
    # A reading above the recovery mark restarts the hold.
    assert state.update_memory(360, now=30) is MemoryLevel.RECOVERY
    assert state.update_memory(340, now=31) is MemoryLevel.RECOVERY
    assert state.update_memory(340, now=60) is MemoryLevel.RECOVERY
    assert state.update_memory(340, now=61.5) is MemoryLevel.NORMAL
    assert state.admission_floor is None
    # Back up again from RECOVERY or NORMAL goes straight to WARNING.
    assert state.update_memory(410, now=70) is MemoryLevel.WARNING


def test_whales_and_top_fee_txs_never_shed():
    state = filled_state()
    whale_ids = [f"{i:064x}" for i in range(0, 50)]  # the 50 lowest-rate txs are whales
    for txid in whale_ids:
        state.whales[txid] = object()  # type: ignore[assignment]
    giants = [f"{i:064x}" for i in range(50, 60)]  # low rate, but among the 100 highest fees
    for txid in giants:
        fee, weight, rate, sigops = state.txs[txid]
        state.txs[txid] = (10**9, weight, rate, sigops)
    top_fee = sorted(state.txs, key=lambda t: state.txs[t][0], reverse=True)[:100]
    state.update_memory(600, now=0)
    assert all(txid in state.txs for txid in whale_ids + giants + top_fee)
    assert state.shed_total == 1_000 - int(1_000 * 0.4)
    # What was shed is the lowest-rate rest: every survivor outside the protected set pays
    # at least the admission floor.
    protected = set(whale_ids) | set(giants) | set(top_fee)
    assert all(r[2] >= state.admission_floor for t, r in state.txs.items() if t not in protected)


def test_shedding_is_rate_limited_and_refuses_low_fee_arrivals():
    state = filled_state()
    state.update_memory(450, now=0)
    after_first = state.shed_total
    state.update_memory(450, now=5)  # within the cooldown: no second shed
    assert state.shed_total == after_first
    state.update_memory(450, now=11)
    assert state.shed_total > after_first
    parser = FrameParser()
    low = {"txid": "f" * 64, "weight": 400, "fee": 100, "vout": [{"value": 1}]}
    frame = parser.parse(orjson.dumps(mempool_frame(1, added=[low])), 0.0)
    state.apply(frame)
    assert "f" * 64 not in state.txs and state.refused_total == 1


def test_parents_are_read_from_vin_and_forgotten_with_their_child():
    parser = FrameParser()
    state = MempoolState()
    parser.mempool_txids = state.txs
    parent, child, grandchild = (f"{n:064x}" for n in (1, 2, 3))

    def tx(txid: str, *spends: str) -> dict:
        vin = [{"txid": s, "vout": 0} for s in (*spends, "ee" * 32)]  # one confirmed input each
        return {"txid": txid, "fee": 1_000, "weight": 800, "vin": vin, "vout": [{"value": 1}]}

    state.apply(parser.parse(orjson.dumps(mempool_frame(1, added=[tx(parent)])), 0.0))
    # the child spends a mempool tx; the grandchild a tx earlier in the same frame
    frame = mempool_frame(2, added=[tx(child, parent), tx(grandchild, child, parent)])
    state.apply(parser.parse(orjson.dumps(frame), 1.0))
    assert state.parents == {child: [parent], grandchild: [child, parent]}
    state.apply(parser.parse(orjson.dumps(mempool_frame(3, mined=[parent, child])), 2.0))
    assert state.parents == {grandchild: [child, parent]}  # stale links are ignored when projecting
    state.apply(parser.parse(orjson.dumps(mempool_frame(4, removed=[grandchild])), 3.0))
    assert state.parents == {}
