"""Recorder/replay round trips, the synthetic generator and the source factory."""

from __future__ import annotations

import collections
import gzip
import itertools
import time
from pathlib import Path

import orjson
import pytest
from ingest_support import MEMPOOL, make_runner

from detection.domain.addresses import encode_segwit_address as segwit_address
from detection.ingest.protocol import FrameParser
from detection.ingest.sources import (
    LiveSource,
    Recorder,
    ReplaySource,
    SyntheticMempool,
    SyntheticSource,
    open_source,
    read_recording,
)
from detection.ingest.sources.replay import fresh_id

PRETTY = (MEMPOOL / "tx02_ws_block.json").read_text()  # multi-line, as a server could send it
FRAMES: list[str | bytes] = [
    '{"pong":true}',
    PRETTY,
    b'{"mempool-transactions":{"sequence":1,"added":[],"removed":["' + b"a" * 64 + b'"]}}',
    "this is not json {",
    "[1,2,3]",
]


@pytest.mark.parametrize("name", ["session.jsonl", "session.jsonl.gz"])
async def test_recorder_replay_round_trip(tmp_path: Path, name: str):
    path = tmp_path / name
    with Recorder(path) as recorder:
        for i, frame in enumerate(FRAMES):
            recorder.write(1_000.0 + i * 0.25, frame)
    if name.endswith(".gz"):
        with gzip.open(path) as handle:
            lines = handle.read().splitlines()
    else:
        lines = path.read_bytes().splitlines()
    assert len(lines) == len(FRAMES)  # one line per frame, even the pretty-printed one
    first = orjson.loads(lines[0])
    assert first == {"t": 0.0, "msg": {"pong": True}}  # the frame itself, not a string
    assert orjson.loads(lines[3]) == {"t": 0.75, "raw": "this is not json {"}
    replayed = list(read_recording(path))
    assert [t for t, _raw in replayed] == [0.0, 0.25, 0.5, 0.75, 1.0]
    for (_t, raw), original in zip(replayed, FRAMES, strict=True):
        text = original if isinstance(original, str) else original.decode()
        if text.startswith(("{", "[")):
            assert orjson.loads(raw) == orjson.loads(text)
        else:
            assert raw.decode() == text
    source = open_source(f"replay:{path}?speed=0")
    got = [raw async for _received, raw in source]
    assert got == [raw for _t, raw in replayed]
    parser = FrameParser()
    for raw in got:
        parser.parse(raw, 0.0)
    assert parser.malformed == {"not_json": 1, "not_object": 1}


def test_replay_hands_the_recorded_frame_bytes_verbatim(tmp_path: Path):
    # The Recorder splices one-line frames in as received; replay slices them back out without
    # decoding, so the parser's single decode is the only one (and the bytes are identical).
    frame = b'{"mempool-transactions":{"sequence":7,"added":[],"removed":[]} }'
    raw_with_key = 'not json ,"msg": {'  # a kept-verbatim line that mentions the key
    path = tmp_path / "verbatim.jsonl"
    with Recorder(path) as recorder:
        recorder.write(5.0, frame, valid_json=True)
        recorder.write(5.5, raw_with_key)
    # Hand-written lines in another layout still replay, through a full decode.
    with path.open("ab") as handle:
        handle.write(b'{ "msg": {"pong": true}, "t": 2 }\n')
    assert list(read_recording(path)) == [
        (0.0, frame.strip()),
        (0.5, raw_with_key.encode()),
        (2.0, b'{"pong":true}'),
    ]


@pytest.mark.alone  # times itself
async def test_replay_honours_timestamps_and_loops(tmp_path: Path):
    path = tmp_path / "paced.jsonl"
    with Recorder(path) as recorder:
        recorder.write(0.0, '{"pong":true}')
        recorder.write(0.3, '{"pong":true}')
    started = time.monotonic()
    frames = [f async for f in open_source(f"replay:{path}?speed=1")]
    assert len(frames) == 2 and time.monotonic() - started >= 0.28
    started = time.monotonic()
    frames = [f async for f in open_source(f"replay:{path}?speed=3")]
    assert 0.09 <= time.monotonic() - started < 0.6  # 0.3 s of recording at 3x
    source = open_source(f"replay:{path}?speed=0&loop=1")
    looped = []
    async for frame in source:
        looped.append(frame)
        if len(looped) == 5:
            await source.close()
    assert len(looped) == 5


def test_synthetic_is_deterministic_and_realistic():
    def first_frames(seed: int, count: int = 400) -> list[bytes]:
        generator = SyntheticMempool(seed=seed, tx_per_s=50, whale_ratio=0.01, block_interval=60)
        stream = generator.frames()
        return [orjson.dumps(next(stream)) for _ in range(count)]

    assert first_frames(5) == first_frames(5)
    assert first_frames(5, 20) != first_frames(6, 20)

    generator = SyntheticMempool(seed=5, tx_per_s=50, whale_ratio=0.01, block_interval=60)
    stream = generator.frames()
    parser = FrameParser()
    kinds: collections.Counter[str] = collections.Counter()
    vsizes, rates = [], []
    for _ in range(400):
        t, frame = next(stream)
        parsed = parser.parse(orjson.dumps(frame), t)
        kinds["whales"] += len(parsed.whales)
        kinds["replaced"] += len(parsed.replaced)
        kinds["blocks"] += parsed.block is not None
        kinds["mempool_blocks"] += parsed.mempool_blocks is not None
        for tx in frame["mempool-transactions"]["added"]:
            vsizes.append(tx["vsize"])
            rates.append(tx["effectiveFeePerVsize"])
    assert parser.malformed_total == 0 and parser.sequence_gaps == 0
    assert kinds["whales"] >= 100 and kinds["replaced"] >= 100 and kinds["blocks"] >= 3
    assert kinds["mempool_blocks"] >= 40
    assert generator.counts["cpfp"] > 50
    vsizes.sort()
    rates.sort()
    assert 140 <= vsizes[len(vsizes) // 2] <= 400  # median tx size
    assert 10 <= rates[len(rates) // 2] <= 25  # median fee rate


def test_synthetic_addresses_have_valid_checksums():
    # BIP-173 / BIP-350 test vectors.
    program = bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6")
    assert segwit_address(0, program) == "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    taproot = bytes.fromhex("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
    assert (
        segwit_address(1, taproot)
        == "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"
    )


async def test_synthetic_source_speed_and_frames():
    source = open_source("synthetic:?seed=2&tx_per_s=20&speed=0&frames=30")
    assert isinstance(source, SyntheticSource)
    frames = [f async for f in source]
    assert len(frames) == 30


def test_synthetic_source_spec_takes_a_whale_cadence():
    source = open_source("synthetic:?seed=2&tx_per_s=20&whale_every_s=2.5&speed=0")
    assert source.generator.whale_every_s == 2.5


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("http://mempool.space/api/v1/ws", "unknown source"),
        ("replay:", "needs a path"),
        ("replay:/nonexistent/file.jsonl", "not found"),
        ("synthetic:?seed=abc", "must be int"),
        ("synthetic:?colour=blue", "unknown parameter"),
        ("synthetic:seed=1", "only a query"),
        ("synthetic:?whale_ratio=2", "whale_ratio"),
        ("synthetic:?whale_every_s=0", "whale_every_s must be > 0"),
        ("synthetic:?whale_every_s=often", "must be float"),
        ("wss://", "not a WebSocket URL"),
    ],
)
def test_bad_specs_raise_clear_value_errors(spec: str, message: str):
    with pytest.raises(ValueError, match=message):
        open_source(spec)


def test_good_specs(tmp_path: Path):
    path = tmp_path / "r.jsonl"
    path.write_text("")
    assert isinstance(open_source("wss://mempool.space/api/v1/ws"), LiveSource)
    replay = open_source(f"replay:{path}?speed=2.5&loop=1")
    assert isinstance(replay, ReplaySource) and replay.speed == 2.5 and replay.loop
    synthetic = open_source("synthetic:")
    assert isinstance(synthetic, SyntheticSource) and synthetic.speed == 1.0


async def test_retime_moves_a_recordings_clock_to_now(tmp_path: Path):
    # The demo recording is from another era; retime=1 makes its blocks and first-seen times
    # continue from now, by one offset, so the order and gaps of the recording are kept.
    path = tmp_path / "old.jsonl"
    with Recorder(path) as recorder:
        recorder.write(
            0.0, orjson.dumps({"block": {"height": 900_001, "timestamp": 1_750_000_000}})
        )
        recorder.write(1.0, b'{"pong":true}')
        recorder.write(
            2.0, orjson.dumps({"blocks": [{"height": 900_002, "timestamp": 1_750_000_600}]})
        )
    started = time.time()
    source = open_source(f"replay:{path}?speed=0&retime=1")
    frames = [orjson.loads(raw) async for _received, raw in source]
    first = frames[0]["block"]["timestamp"]
    assert abs(first - started) < 5
    assert frames[1] == {"pong": True}
    assert frames[2]["blocks"][0]["timestamp"] - first == 600
    assert frames[2]["blocks"][0]["height"] == 900_002


def write_tiny_chain(path: Path) -> dict:
    """Two blocks, a whale seen, replaced and mined, over 2 s of recording."""
    parent, first, second = "aa" * 32, "bb" * 32, "cc" * 32
    whale, replacement, spent = "11" * 32, "22" * 32, "33" * 32
    tx = {"txid": whale, "vin": [{"txid": spent, "vout": 0, "sequence": 4_294_967_293}]}
    frames = [
        (0.0, {"block": {"id": first, "height": 900_001, "previousblockhash": parent,
                         "timestamp": 1_750_000_000, "mediantime": 1_749_997_000}}),
        (0.5, {"mempool-transactions": {"sequence": 7, "added": [dict(tx, firstSeen=1_750_000_010)]}}),
        (1.0, {"mempool-transactions": {"sequence": 8, "replaced": [
            {"replaced": whale, "by": dict(tx, txid=replacement, firstSeen=1_750_000_020)}]}}),
        (2.0, {"block": {"id": second, "height": 900_002, "previousblockhash": first,
                         "timestamp": 1_750_000_300, "mediantime": 1_749_997_100},
               "mempool-transactions": {"sequence": 9, "mined": [replacement]}}),
    ]  # fmt: skip
    with Recorder(path) as recorder:
        for t, frame in frames:
            recorder.write(t, orjson.dumps(frame))
    return {"whale": whale, "replacement": replacement, "spent": spent, "second": second}


async def replay_passes(spec: str, passes: int) -> list[list[dict]]:
    source = open_source(spec)
    frames = []
    async for _received, raw in source:
        frames.append(orjson.loads(raw))
        if len(frames) == 4 * passes:
            await source.close()
    return [frames[i : i + 4] for i in range(0, len(frames), 4)]


@pytest.mark.parametrize("retime", [0, 1])
async def test_a_looped_replay_continues_the_chain(tmp_path: Path, retime: int):
    # loop=1 (the demo): each pass goes on from the last: heights, times and the mempool sequence
    # move forward, the first block builds on the last pass's tip, and every txid is new, so the
    # second pass's whales are new whales (dedup would swallow repeats).
    path = tmp_path / "tiny.jsonl"
    recorded = write_tiny_chain(path)
    spec = f"replay:{path}?speed=0&loop=1&retime={retime}"
    passes = await replay_passes(spec, 3)

    blocks = [f["block"] for p in passes for f in p if "block" in f]
    assert [b["height"] for b in blocks] == list(range(900_001, 900_007))
    for earlier, later in itertools.pairwise(blocks):
        assert later["previousblockhash"] == earlier["id"]
        assert later["timestamp"] > earlier["timestamp"]
        assert later["mediantime"] > earlier["mediantime"]
    assert len({b["id"] for b in blocks}) == 6
    sequences = [f["mempool-transactions"]["sequence"] for p in passes for f in p[1:]]
    assert sequences == list(range(7, 16))
    seen_at = [
        tx["firstSeen"]
        for p in passes
        for tx in (p[1]["mempool-transactions"]["added"][0], p[2]["mempool-transactions"]["replaced"][0]["by"])
    ]  # fmt: skip
    assert seen_at == sorted(seen_at) and len(set(seen_at)) == 6
    # The recording's own length (2 s) is shorter than its block times' span (300 s): a pass moves
    # the clock by the longer, so the next pass starts after the last one ended.
    assert blocks[2]["timestamp"] - blocks[0]["timestamp"] == 301

    whales = []
    for n, (_block, added, replaced, mined) in enumerate(passes):
        tx = added["mempool-transactions"]["added"][0]
        change = replaced["mempool-transactions"]["replaced"][0]
        # Within a pass the story holds: the replacement replaces the whale seen, spends the
        # same input, and is the one mined.
        assert change["replaced"] == tx["txid"]
        assert change["by"]["vin"][0]["txid"] == tx["vin"][0]["txid"]
        assert mined["mempool-transactions"]["mined"] == [change["by"]["txid"]]
        assert tx["vin"][0]["sequence"] == 4_294_967_293  # nSequence is not the mempool's
        assert tx["txid"] == fresh_id(recorded["whale"], n)
        whales += [tx["txid"], change["by"]["txid"], tx["vin"][0]["txid"]]
    assert passes[0][1]["mempool-transactions"]["added"][0]["txid"] == recorded["whale"]
    assert len(set(whales)) == 9
    assert all(len(txid) == 64 and int(txid, 16) >= 0 for txid in whales)
    # Deterministic: another run of the same replay gives the same txids and hashes.
    again = await replay_passes(spec, 3)
    if not retime:
        assert again == passes
    else:
        assert [f["block"]["id"] for p in again for f in p if "block" in f] == [
            b["id"] for b in blocks
        ]


async def test_the_demo_replays_second_pass_brings_new_whales_on_new_blocks():
    # Through the parser and lifecycle: the demo's loop=1 second pass is as rich as its first,
    # with none of its whales (dedup would drop repeats) and the next five heights.
    demo = Path(__file__).resolve().parents[2] / "detection" / "fixtures" / "demo.jsonl.gz"
    frames_per_pass = sum(1 for _ in read_recording(demo))
    runner = make_runner()
    source = open_source(f"replay:{demo}?speed=0&loop=1&retime=1")
    kinds = [collections.Counter(), collections.Counter()]
    txids: list[set] = [set(), set()]
    heights: list[set] = [set(), set()]
    replayed = 0
    async for received_at, raw in source:
        n = replayed // frames_per_pass
        for event in runner.process_frame(received_at, raw):
            kinds[n][event["kind"]] += 1
            txids[n].add(event["txid"])
            if event.get("block"):
                heights[n].add(event["block"]["height"])
        replayed += 1
        if replayed == 2 * frames_per_pass:
            await source.close()
    assert kinds[0]["seen"] >= 10 and kinds[1] == kinds[0]
    assert len(txids[1]) == len(txids[0]) and not txids[0] & txids[1]
    assert sorted(heights[0]) == list(range(900_001, 900_006))
    assert sorted(heights[1]) == list(range(900_006, 900_011))
    assert runner.parser.sequence_resets == 0 and runner.parser.sequence_gaps == 0
