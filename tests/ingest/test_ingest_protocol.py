"""The frame parser on real fixtures and on hostile input."""

from __future__ import annotations

import json
import math

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_support import (
    MEMPOOL,
    TX02,
    as_unconfirmed,
    load,
    mempool_frame,
    whales_277647,
    whales_702861,
)

from detection.ingest.protocol import FrameParser
from detection.txshape import SATS_PER_BTC, WhaleTx


def encode(frame: object) -> bytes:
    """JSON text; the stdlib encoder also writes integers beyond 64 bits (orjson refuses)."""
    try:
        return orjson.dumps(frame)
    except TypeError:
        return json.dumps(frame).encode()


def parse(parser: FrameParser, frame: object):
    return parser.parse(encode(frame), 1000.0)


def test_real_whales_with_prevouts_and_zero_fee():
    parser = FrameParser()
    frame = parse(parser, mempool_frame(1, added=[as_unconfirmed(t) for t in whales_277647()]))
    assert set(frame.whales) == {t["txid"] for t in whales_277647()}
    zero = frame.whales["5143ba5524d21b646de5cd5a1ab6ee7b7823a59c87a347d3b5339e9f977e7dcd"]
    assert zero.fee == 0
    assert zero.effective_fee_rate == 0.0  # fee 0 is a real rate, not "unknown"
    assert zero.value == 927 * SATS_PER_BTC
    assert zero.inputs[0].value == 927 * SATS_PER_BTC
    assert zero.inputs[0].address == "18GGVNNJ5EYSyac8svtWDvAKtB2fVq2AmS"
    consolidation = frame.whales["d385205568e5420bc73b190ede001678730d42744d0716d2c5c2b6467cf73082"]
    assert len(consolidation.inputs) == 23
    assert consolidation.fee == 50_000
    assert consolidation.vsize == 4_223
    assert consolidation.effective_fee_rate == pytest.approx(50_000 / 4_223)
    records = dict(frame.added)
    assert records[consolidation.txid] == (50_000, 16_892, pytest.approx(11.84, abs=0.01), 0)
    # Round trip through the shared JSON shape.
    assert WhaleTx.from_json(orjson.loads(orjson.dumps(zero.to_json()))) == zero


def test_whales_without_prevouts_keep_unknowns_unknown():
    parser = FrameParser()
    frame = parse(parser, mempool_frame(1, added=whales_702861()))
    assert len(frame.whales) == 4
    mega = frame.whales["75e4e7fc47df2eafe8de86279cbd8cfe77746d502a8eca6d6f0cb9da1d9a04be"]
    assert mega.value == 2_471_519_546_778
    assert mega.fee is None and mega.effective_fee_rate is None
    assert all(i.value is None and i.address is None for i in mega.inputs)
    assert not mega.has_prevouts
    assert dict(frame.added)[mega.txid] == (None, 1_600, 0.0, 0)


def test_whale_floor_is_configurable_and_non_whales_stay_compact():
    txs = whales_277647()
    parser = FrameParser(whale_min_sats=150 * SATS_PER_BTC)
    frame = parse(parser, mempool_frame(1, added=txs))
    assert list(frame.whales) == [
        "5143ba5524d21b646de5cd5a1ab6ee7b7823a59c87a347d3b5339e9f977e7dcd"
    ]
    assert len(frame.added) == 3
    assert parser.txs_parsed == 3 and parser.whales_found == 1


def test_effective_rate_preferred_and_position_kept_for_whales():
    tx = as_unconfirmed(whales_277647()[0])
    tx.update(effectiveFeePerVsize=42.5, position={"block": 3, "vsize": 1000}, sigops=92)
    frame = parse(FrameParser(), mempool_frame(1, added=[tx]))
    assert dict(frame.added)[tx["txid"]] == (50_000, 16_892, 42.5, 92)
    assert frame.positions == {tx["txid"]: 3}
    assert frame.whales[tx["txid"]].effective_fee_rate == 42.5


def test_real_init_payload_and_block_frames():
    parser = FrameParser()
    init = parser.parse((MEMPOOL / "mainnet_mempoolInfo.json").read_bytes(), 1.0)
    assert init is not None
    assert len(init.mempool_blocks) == 8
    assert len(init.mempool_blocks[-1]["feeRange"]) == 11  # the "everything else" stack
    assert init.mempool_info["size"] == 112_686
    assert init.fees["fastestFee"] > 0
    assert max(b.height for b in init.blocks) == 837_050  # the tip in this payload
    block = parser.parse((MEMPOOL / "tx02_ws_block.json").read_bytes(), 2.0)
    assert block.block.height == 890_448
    assert block.tx_confirmed == [TX02]
    position = parser.parse((MEMPOOL / "tx02_ws_tx_position.json").read_bytes(), 3.0)
    assert position.positions == {TX02: 0}
    replaced = parser.parse((MEMPOOL / "tx01_ws_tx_replaced.json").read_bytes(), 4.0)
    assert replaced.tx_replaced == TX02
    assert parser.malformed_total == 0


def test_unknown_keys_ignored_and_pong():
    parser = FrameParser()
    frame = parse(parser, {"pong": True, "conversions": {"USD": 1}, "loadingIndicators": {}})
    assert frame.pong and parser.unknown_keys == 1 and parser.malformed_total == 0
    assert frame.conversions == {"USD": 1}
    frame = parse(parser, {"conversions": [1, 2]})
    assert frame.conversions is None and parser.malformed["bad_conversions"] == 1


def test_sequence_gaps_counted_and_reset_rebaselines():
    parser = FrameParser()
    for sequence in (10, 11, 12, 15, 16, 3, 4, 9):
        parse(parser, mempool_frame(sequence))
    assert parser.sequence_gaps == 2  # 12 -> 15 and 4 -> 9
    assert parser.sequence_missed == 2 + 4
    assert parser.sequence_resets == 1  # 16 -> 3: server restart, not a gap


def test_large_frames_are_parsed():
    """> 2 MiB: a block's full `mined` list plus thousands of added txs."""
    template = as_unconfirmed(whales_277647()[2])
    added = []
    for i in range(1_600):
        tx = dict(template)
        tx["txid"] = f"{i:064x}"
        tx["vout"] = [{"value": 1_000 + i, "scriptpubkey_type": "p2pkh"}]
        added.append(tx)
    mined = [f"{i + 10**6:064x}" for i in range(4_000)]
    raw = orjson.dumps(mempool_frame(7, added=added, mined=mined))
    assert len(raw) > 2 * 2**20
    frame = FrameParser().parse(raw, 0.0)
    assert len(frame.added) == 1_600 and len(frame.mined) == 4_000 and not frame.whales


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not_json"),
        (b"[1, 2, 3]", "not_object"),
        (b'"a string"', "not_object"),
        (b"[" * 5000 + b"]" * 5000, "not_json"),
        (b'{"mempool-transactions": []}', "bad_mempool-transactions"),
        (b'{"mempool-transactions": {"added": [1, "x", {"txid": 5}]}}', "bad_tx"),
        (b'{"mempool-transactions": {"sequence": 1e400}}', "not_json"),
        (b'{"mempool-transactions": {"sequence": 100000000000000000000000}}', "bad_sequence"),
        (b'{"block": {"height": -1, "id": "00"}}', "bad_block"),
        (b'{"mempool-blocks": [{"feeRange": "x"}]}', "bad_mempool-blocks"),
        (b'{"txPosition": {"txid": 1}}', "bad_txPosition"),
        (b'{"tracked-txs": []}', "bad_tracked-txs"),
        (b'{"fees": 3}', "bad_fees"),
    ],
)
def test_malformed_frames_counted_by_reason(raw, reason):
    parser = FrameParser()
    parser.parse(raw, 0.0)
    assert parser.malformed[reason] >= 1
    assert parser.malformed_frames == 1


def test_hostile_tx_fields_never_make_a_whale():
    tx = as_unconfirmed(whales_277647()[0])
    hostile = [
        dict(tx, weight=10**30),
        dict(tx, weight="900"),
        dict(tx, vout=[{"value": 10**40}]),
        dict(tx, vout=[{"value": -5}]),
        dict(tx, vout=[{"value": 1e20}]),
        dict(tx, txid="short"),
        dict(tx, vout={"value": 1}),
    ]
    parser = FrameParser()
    frame = parse(parser, mempool_frame(1, added=hostile))
    assert not frame.whales and not frame.added
    assert parser.malformed["bad_tx"] == len(hostile)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=70),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                [
                    "mempool-transactions",
                    "added",
                    "removed",
                    "mined",
                    "replaced",
                    "sequence",
                    "txid",
                    "weight",
                    "fee",
                    "vout",
                    "vin",
                    "value",
                    "prevout",
                    "block",
                    "blocks",
                    "height",
                    "id",
                    "mempool-blocks",
                    "feeRange",
                    "fees",
                    "mempoolInfo",
                    "tracked-txs",
                    "txPosition",
                    "position",
                    "txConfirmed",
                    "txReplaced",
                    "pong",
                    "by",
                    "effectiveFeePerVsize",
                ]
            )
            | st.text(max_size=8),
            children,
            max_size=6,
        )
    ),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values)
def test_hostile_json_never_raises(value):
    parser = FrameParser()
    parser.parse(encode(value), 0.0)
    assert parser.frames == 1


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=300))
def test_random_bytes_never_raise(raw):
    parser = FrameParser()
    frame = parser.parse(raw, 0.0)
    if frame is None:
        assert parser.malformed_frames == 1


@settings(max_examples=150, deadline=None)
@given(
    tx=st.fixed_dictionaries(
        {"txid": st.text(min_size=64, max_size=64, alphabet="0123456789abcdef")},
        optional={
            "weight": st.one_of(st.integers(), st.floats(allow_nan=False), st.text()),
            "fee": st.one_of(st.none(), st.integers(), st.floats(allow_nan=False)),
            "vout": st.lists(
                st.fixed_dictionaries(
                    {"value": st.one_of(st.integers(-10, 10**17), st.none(), st.text())}
                ),
                max_size=4,
            ),
            "vin": st.lists(st.dictionaries(st.text(max_size=8), st.integers()), max_size=3),
            "effectiveFeePerVsize": st.one_of(
                st.floats(allow_nan=False, allow_infinity=False), st.text()
            ),
        },
    )
)
def test_fuzzed_txs_yield_sane_records(tx):
    parser = FrameParser(whale_min_sats=1)
    frame = parse(parser, mempool_frame(1, added=[tx]))
    if frame is None:  # e.g. a lone surrogate in a string: not valid JSON text, counted
        assert parser.malformed["not_json"] == 1
        return
    for _txid, (fee, weight, rate, sigops) in frame.added:
        assert fee is None or (isinstance(fee, int) and fee >= 0)
        assert isinstance(weight, int) and weight > 0
        assert isinstance(rate, float | int) and rate >= 0 and math.isfinite(rate)
        assert isinstance(sigops, int)
    assert len(frame.added) + parser.malformed["bad_tx"] == 1


def test_replaced_carries_full_replacing_tx():
    old = load(MEMPOOL / "tx01_api_cached.json")
    new = load(MEMPOOL / "tx02_api_tx.json")
    frame = parse(
        FrameParser(whale_min_sats=40_000),
        mempool_frame(
            2, added=[new], removed=[old["txid"]], replaced=[{"replaced": old["txid"], "by": new}]
        ),
    )
    assert frame.replaced == [(old["txid"], new["txid"])]
    assert frame.replacing_txs[new["txid"]].fee == 960
    assert len(frame.added) == 1  # not counted twice
