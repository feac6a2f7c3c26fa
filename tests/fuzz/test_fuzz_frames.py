"""Mutated real mempool.space frames through the real parser, state and whale lifecycle.

tests/ingest/test_ingest_protocol.py already throws random JSON, random bytes and random single
transactions at a bare parser. What it does not check, and this module does:

* frames that are *almost* right (the real fixture frames with one field changed, a key dropped
  or duplicated, the text cut short, bytes that are not UTF-8), which reach deep into the
  handlers where random JSON never gets;
* the whole pipeline (parser -> MempoolState -> WhaleTracker -> projection) behind
  ``IngestRunner.process_frame``, with whales already pending when the garbage arrives;
* the bookkeeping: every frame that loses content is counted once, under a named reason;
* state invariants: no negative or non-finite sizes, no whale lost to a frame that did not say
  it left, and a good frame after the garbage is still handled.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from detection.ingest.protocol import _HANDLERS, FrameParser
from tests.ingest.ingest_support import (
    MEMPOOL,
    TX01,
    as_unconfirmed,
    load,
    make_runner,
    mempool_frame,
    whales_277647,
)

WHALE_MIN = 40_000  # low enough that the small real RBF pair (tx01/tx02) counts as whales too
WHALES = [as_unconfirmed(tx) for tx in whales_277647()]
TX01_JSON = load(MEMPOOL / "tx01_api_cached.json")
TX02_JSON = load(MEMPOOL / "tx02_api_tx.json")
FRESH_TXID = "f" * 64

# Every reason the parser may count a loss under; anything else is an unnamed reason.
NAMED_REASONS = frozenset(
    {"not_json", "not_object", "bad_tx", "bad_whale_tx", "bad_sequence"}
    | {f"bad_{key}" for key in ("added", "removed", "mined", "replaced")}
    | {f"bad_{key}" for key in _HANDLERS}
)

SEED_FRAMES: list[dict[str, Any]] = [
    mempool_frame(2, added=WHALES[:3], removed=["a" * 64], mined=["b" * 64]),
    mempool_frame(2, added=[TX02_JSON], replaced=[{"replaced": TX01, "by": TX02_JSON}]),
    load(MEMPOOL / "tx01_ws_blocks_01.json"),
    load(MEMPOOL / "tx02_ws_block.json"),
    load(MEMPOOL / "tx02_ws_mempool_blocks_01.json"),
    load(MEMPOOL / "tx02_ws_tx_position.json"),
    load(MEMPOOL / "tx01_ws_tx_replaced.json"),
    load(MEMPOOL / "mainnet_mempoolInfo.json"),
    {
        "tracked-txs": {
            TX01: {
                "confirmed": False,
                "position": {"block": 1},
                "cpfp": {"effectiveFeePerVsize": 3},
            }
        },
        "fees": {"fastestFee": 5, "halfHourFee": 4, "hourFee": 3, "economyFee": 2, "minimumFee": 1},
        "txConfirmed": TX01,
        "pong": True,
    },
]

hostile_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([-1, 0, 2**63, 2**64, 2**64 + 1, -(2**63) - 1, 21_000_000 * 10**8 + 1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e308, -1e308, 5e-324, -0.0, 0.5]),
    st.text(max_size=70),
    st.sampled_from(["", "\u202e\u0000", "💥" * 40, "é", "0" * 64, "Z" * 64, TX01]),
)
hostile_values = st.recursive(
    hostile_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _containers(node: Any, path: tuple = ()) -> list[tuple]:
    """Paths (tuples of keys/indexes) to every value in a JSON tree, the root excluded."""
    paths = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, child in items:
        paths.append((*path, key))
        if isinstance(child, dict | list) and len(paths) < 400:
            paths.extend(_containers(child, (*path, key))[:200])
    return paths


def _parent(tree: Any, path: tuple) -> Any:
    for key in path[:-1]:
        tree = tree[key]
    return tree


@st.composite
def mutated_frames(draw) -> dict[str, Any]:
    """A real frame with 1..3 structural mutations somewhere in it."""
    frame = copy.deepcopy(draw(st.sampled_from(SEED_FRAMES)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _containers(frame)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(frame, path)
        key = path[-1]
        action = draw(st.sampled_from(["replace", "drop", "wrap", "nest", "rename", "copy"]))
        if action == "replace":
            parent[key] = draw(hostile_values)
        elif action == "drop":
            del parent[key]
        elif action == "wrap":
            parent[key] = [parent[key]]
        elif action == "nest":
            parent[key] = deep(draw(st.integers(10, 200)))
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = parent.pop(key)
        elif action == "copy" and isinstance(parent, list) and parent:
            parent.append(copy.deepcopy(parent[key]))
    return frame


def encode(frame: Any) -> bytes:
    # The stdlib encoder writes integers beyond 64 bits (orjson refuses) and keeps lone
    # surrogates as escapes, as a hostile server could.
    return json.dumps(frame).encode()


@st.composite
def byte_mangled_frames(draw) -> bytes:
    """A real frame's text cut short, with non-UTF-8 bytes spliced in, or with duplicate keys."""
    raw = encode(draw(st.sampled_from(SEED_FRAMES)))
    how = draw(st.sampled_from(["truncate", "splice", "duplicate_key", "overwrite"]))
    if how == "truncate":
        return raw[: draw(st.integers(0, len(raw) - 1))]
    at = draw(st.integers(0, len(raw)))
    if how == "splice":
        junk = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x00", b"\xe2\x82"]))
        return raw[:at] + junk + raw[at:]
    if how == "duplicate_key":
        # orjson keeps the last of two equal keys; the first one must not leak into state.
        frame = draw(st.sampled_from(SEED_FRAMES))
        key = next(iter(frame))
        return b"{" + encode(key) + b":" + encode(draw(hostile_values)) + b"," + raw[1:]
    return raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at + 8 :]


def primed_runner():
    """A runner that already tracks real whales as pending, as live ingest would."""
    runner = make_runner(whale_min_sats=WHALE_MIN)
    runner.process_frame(100.0, orjson.dumps(mempool_frame(1, added=WHALES)))
    assert set(runner.tracker.pending) == {tx["txid"] for tx in WHALES}
    return runner


def leaving_txids(raw: bytes) -> set[str]:
    """Txids this frame itself says left the mempool (a separate parser as oracle)."""
    frame = FrameParser(WHALE_MIN).parse(raw, 0.0)
    if frame is None:
        return set()
    gone = set(frame.removed) | set(frame.mined) | set(frame.tx_confirmed)
    gone |= {old for old, _new in frame.replaced}
    gone |= {txid for txid, info in frame.tracked.items() if info.confirmed or info.replaced_by}
    return gone


def assert_state_sane(runner) -> None:
    for txid, (fee, weight, rate, sigops) in runner.state.items():
        assert type(txid) is str and len(txid) == 64
        assert fee is None or (type(fee) is int and fee >= 0)
        assert type(weight) is int and weight > 0
        assert isinstance(rate, int | float) and math.isfinite(rate) and rate >= 0
        assert type(sigops) is int and sigops >= 0
    for whale in runner.state.whales.values():
        assert whale.vsize > 0 and whale.weight > 0
        assert whale.fee is None or whale.fee >= 0
        assert all(o.value >= 0 for o in whale.outputs)
        assert all(i.value is None or i.value >= 0 for i in whale.inputs)
        assert whale.value >= WHALE_MIN


def check_bad_frame(raw: bytes) -> None:
    runner = primed_runner()
    parser = runner.parser
    whales_before = set(runner.state.whales)
    pending_before = set(runner.tracker.pending)
    flagged_before, reasons_before = parser.malformed_frames, parser.malformed_total

    runner.process_frame(101.0, raw)

    assert parser.frames == 2
    lost = parser.malformed_total - reasons_before
    # A frame that lost anything is one malformed frame, however many reasons it hit.
    assert parser.malformed_frames - flagged_before == (1 if lost else 0)
    assert set(parser.malformed) <= NAMED_REASONS, parser.malformed
    assert_state_sane(runner)
    gone = leaving_txids(raw)
    assert whales_before - gone <= set(runner.state.whales)
    # A pending whale may only move on (replaced, confirmed) when the frame said so.
    assert pending_before - gone <= set(runner.tracker.pending)

    # A good frame after the garbage is handled as if the garbage had never come.
    fresh = dict(WHALES[0], txid=FRESH_TXID)
    events = runner.process_frame(102.0, orjson.dumps(mempool_frame(3, added=[fresh])))
    assert [(e["kind"], e["txid"]) for e in events] == [("seen", FRESH_TXID)]
    assert FRESH_TXID in runner.state.whales and FRESH_TXID in runner.tracker.pending


@given(frame=mutated_frames())
def test_mutated_real_frames_keep_the_pipeline_sound(frame):
    check_bad_frame(encode(frame))


@given(raw=byte_mangled_frames())
def test_byte_mangled_real_frames_keep_the_pipeline_sound(raw):
    check_bad_frame(raw)


# A key that the parser knows, given a value of the wrong type, must be counted under its own
# reason: a frame whose `added` silently turned into `{}` or `0` would otherwise look healthy.
WRONG_TYPE = {
    "mempool-transactions": st.one_of(
        st.lists(st.integers(), max_size=2), st.integers(), st.text()
    ),
    "block": st.one_of(st.lists(st.integers(), max_size=2), st.integers(), st.text()),
    "blocks": st.one_of(st.dictionaries(st.text(max_size=3), st.integers()), st.integers()),
    "mempool-blocks": st.one_of(st.dictionaries(st.text(max_size=3), st.integers()), st.text()),
    "fees": st.one_of(st.lists(st.integers(), max_size=2), st.integers(), st.text()),
    "mempoolInfo": st.one_of(st.lists(st.integers(), max_size=2), st.integers(), st.text()),
    "tracked-txs": st.one_of(st.lists(st.integers(), max_size=2), st.integers(), st.text()),
    "txPosition": st.one_of(st.lists(st.integers(), max_size=2), st.integers(), st.text()),
    "txConfirmed": st.one_of(st.integers(), st.text(max_size=63), st.booleans()),
    "txReplaced": st.one_of(st.integers(), st.text(), st.lists(st.integers(), max_size=2)),
}
NOT_A_LIST = st.one_of(
    st.just(0),
    st.just(""),
    st.just({}),
    st.just(False),
    st.integers(),
    st.text(),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.booleans(),
)


@given(key=st.sampled_from(sorted(WRONG_TYPE)), data=st.data())
def test_wrong_type_for_a_known_key_is_counted_under_its_name(key, data):
    value = data.draw(WRONG_TYPE[key])
    parser = FrameParser(WHALE_MIN)
    parser.parse(encode({key: value}), 0.0)
    assert parser.malformed == {f"bad_{key}": 1}
    assert parser.malformed_frames == 1


@given(key=st.sampled_from(["added", "removed", "mined", "replaced"]), value=NOT_A_LIST)
def test_a_delta_list_that_is_not_a_list_is_counted(key, value):
    parser = FrameParser(WHALE_MIN)
    frame = parser.parse(encode({"mempool-transactions": {"sequence": 1, key: value}}), 0.0)
    assert parser.malformed == {f"bad_{key}": 1}
    assert frame.added == [] and frame.removed == [] and frame.mined == [] and frame.replaced == []


@given(
    key=st.sampled_from(["fastestFee", "halfHourFee", "hourFee", "economyFee", "minimumFee"]),
    value=st.one_of(
        st.integers(max_value=-1), st.text(), st.just(1e10), st.booleans(), st.lists(st.integers())
    ),
)
def test_a_garbage_fee_is_counted_and_the_good_ones_kept(key, value):
    parser = FrameParser(WHALE_MIN)
    fees = {"fastestFee": 9, "halfHourFee": 7, "hourFee": 5, "economyFee": 3, "minimumFee": 1}
    frame = parser.parse(encode({"fees": fees | {key: value}}), 0.0)
    assert parser.malformed == {"bad_fees": 1}
    assert frame.fees == {k: float(v) for k, v in fees.items() if k != key}


@given(
    key=st.sampled_from(["size", "bytes", "usage", "total_fee", "maxmempool", "mempoolminfee"]),
    value=st.one_of(st.integers(max_value=-1), st.text(), st.just(1e19), st.booleans()),
)
def test_a_garbage_mempool_info_figure_is_counted(key, value):
    parser = FrameParser(WHALE_MIN)
    info = load(MEMPOOL / "mainnet_mempoolInfo.json")["mempoolInfo"]
    frame = parser.parse(encode({"mempoolInfo": info | {key: value}}), 0.0)
    assert parser.malformed == {"bad_mempoolInfo": 1}
    assert key not in frame.mempool_info
    assert frame.mempool_info["maxmempool" if key != "maxmempool" else "size"] > 0


def test_regression_empty_object_for_added_is_counted():
    """Found by fuzzing: `"added": {}` (and 0, "", false) passed as "nothing added", uncounted."""
    runner = primed_runner()
    runner.process_frame(101.0, b'{"mempool-transactions": {"sequence": 2, "added": {}}}')
    assert runner.parser.malformed == {"bad_added": 1}
    assert runner.parser.malformed_frames == 1


def test_regression_negative_fee_estimate_is_counted():
    """Found by fuzzing: a negative `fastestFee` was dropped without a trace."""
    parser = FrameParser()
    frame = parser.parse(b'{"fees": {"fastestFee": -3, "hourFee": 2}}', 0.0)
    assert frame.fees == {"hourFee": 2.0}
    assert parser.malformed == {"bad_fees": 1}
