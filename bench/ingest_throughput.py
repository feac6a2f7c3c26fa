"""Ingest throughput: parse + state + whale filter + lifecycle + projection, vs bare orjson.loads.

    .venv/bin/python bench/ingest_throughput.py [--txs 200000] [--seed 1] [--recording PATH]
                                                [--write-recording PATH]

Frames come from the synthetic generator (deterministic for a seed; ~2,000 txs per frame, a block
every ~120 simulated s) or from a recording (``--recording``, the ``--record`` format). They are
serialised to bytes before timing, so generation is not measured. The pipeline is
``detection.ingest.runner.FramePipeline`` — exactly what the live reader runs per frame, with the
projection at most once per wall-clock second and on every block. Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.results import Results, add_json_argument  # noqa: E402
from detection.ingest.runner import FramePipeline  # noqa: E402
from detection.ingest.sources import Recorder, SyntheticMempool, read_recording  # noqa: E402


def synthetic_frames(txs: int, seed: int, **options: float) -> tuple[list[bytes], int]:
    options = {"tx_per_s": 2_000.0, "whale_ratio": 0.001, "block_interval": 120.0, **options}
    generator = SyntheticMempool(seed=seed, **options)
    frames: list[bytes] = []
    count = 0
    for _t, frame in generator.frames():
        frames.append(orjson.dumps(frame))
        count += len(frame["mempool-transactions"]["added"])
        if count >= txs:
            break
    return frames, count


def write_recording(path: Path, frames: list[bytes]) -> None:
    with Recorder(path) as recorder:
        for i, raw in enumerate(frames):
            recorder.write(float(i), raw, valid_json=True)


def count_txs(frames: list[bytes]) -> int:
    total = 0
    for raw in frames:
        delta = orjson.loads(raw).get("mempool-transactions") or {}
        total += len(delta.get("added") or [])
    return total


def time_loads(frames: list[bytes], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for raw in frames:
            orjson.loads(raw)
        best = min(best, time.perf_counter() - started)
    return best


def time_pipeline(frames: list[bytes], projection_interval: float) -> tuple[float, FramePipeline]:
    pipeline = FramePipeline(source="bench", projection_interval=projection_interval)
    started = time.perf_counter()
    for i, raw in enumerate(frames):
        pipeline.process(float(i), raw)
    return time.perf_counter() - started, pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--recording", type=Path)
    parser.add_argument("--write-recording", type=Path)
    add_json_argument(parser)
    args = parser.parse_args()
    report = Results(
        "ingest_throughput",
        "Ingest throughput",
    )

    if args.recording:
        frames = [raw for _t, raw in read_recording(args.recording)]
        txs = count_txs(frames)
        origin = f"recording {args.recording}"
    else:
        started = time.perf_counter()
        frames, txs = synthetic_frames(args.txs, args.seed)
        origin = f"synthetic seed={args.seed} (generated in {time.perf_counter() - started:.1f} s)"
    if args.write_recording:
        write_recording(args.write_recording, frames)
    size = sum(len(f) for f in frames)
    print(f"input: {origin}: {len(frames)} frames, {txs:,} txs, {size / 2**20:.1f} MiB JSON")
    print(f"largest frame: {max(len(f) for f in frames) / 2**20:.2f} MiB")

    # The host may be shared: interleave the runs and keep the best of each.
    rounds = 3
    loads = float("inf")
    results: dict[str, tuple[float, FramePipeline]] = {}
    variants = (("pipeline, projection <= 1/s", 1.0), ("pipeline, no timed projection", math.inf))
    for _ in range(rounds):
        gc.collect()
        loads = min(loads, time_loads(frames, repeat=1))
        for label, interval in variants:
            gc.collect()
            elapsed, pipeline = time_pipeline(frames, interval)
            if label not in results or elapsed < results[label][0]:
                results[label] = (elapsed, pipeline)
    print(f"bare orjson.loads:               {loads:6.2f} s  {txs / loads:10,.0f} tx/s")
    for label, (elapsed, pipeline) in results.items():
        print(
            f"{label:32} {elapsed:6.2f} s  {txs / elapsed:10,.0f} tx/s  "
            f"ratio to loads {elapsed / loads:4.2f}x  "
            f"(mempool {len(pipeline.state):,} txs, whales {pipeline.whales}, "
            f"projections {pipeline.projections}, last {pipeline.projection_ms or 0:.0f} ms, "
            f"events {pipeline.tracker.events_made})"
        )
    print(f"(best of {rounds} interleaved rounds each)")

    full, full_pipeline = results["pipeline, projection <= 1/s"]
    bare, _ = results["pipeline, no timed projection"]
    report.add("input", f"{txs:,} txs in {len(frames)} frames, {size / 2**20:.0f} MiB of JSON")
    report.add("bare `orjson.loads` of the same frames", f"{txs / loads:,.0f} tx/s")
    report.add(
        "parse + state + projection (<= 1/s) + whale filter, one core",
        f"{txs / full:,.0f} tx/s",
        target=">= 20,000 tx/s",
        met=txs / full >= 20_000,
    )
    report.add(
        "the same, as a ratio to the bare parse",
        f"{full / loads:.2f}x",
        target="<= 3x",
        met=full / loads <= 3.0,
    )
    report.add(
        "the same without the timed projection", f"{txs / bare:,.0f} tx/s, {bare / loads:.2f}x"
    )
    report.add(
        "ingest mempool with parent links (package projection)",
        f"{len(full_pipeline.state.parents):,} txs with an unconfirmed parent",
    )
    report.note(f"Input: {origin}. Best of {rounds} interleaved rounds of each variant.")
    report.save(args.json)


if __name__ == "__main__":
    main()
