"""Ingest throughput: parse + state + whale filter + lifecycle + projection, vs bare orjson.loads.

    .venv/bin/python bench/ingest_throughput.py [--txs 200000] [--seed 1] [--recording PATH]
                                                [--write-recording PATH]

Frames come from the synthetic generator (deterministic for a seed; ~2,000 txs per frame, a block
every ~120 simulated s) or from a recording (``--recording``, the ``--record`` format). They are
serialised to bytes before timing, so generation is not measured. The pipeline is
``detection.ingest.runner.FramePipeline`` — exactly what the live reader runs per frame, with the
projection at most once per wall-clock second and on every block. Prints figures; not a test.

Unless ``--recording`` is given, the frames are also written to a recording (``--write-recording``,
by default var/bench/ingest_throughput.jsonl.gz) and replayed from it: the replay read + pipeline,
and the whole ``manage.py ingest_mempool`` process at full speed (``replay:PATH?speed=0``, with a
throwaway SQLite database, var directory and Redis key prefix), each as a ratio to gunzip + parse
of the same file.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import orjson
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_RECORDING = ROOT / "var" / "bench" / "ingest_throughput.jsonl.gz"

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


def decode_every_line(path: Path) -> Iterator[tuple[float, bytes]]:
    """The replay read before issue 19: decode each line, re-encode ``msg`` for the parser."""
    with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as handle:
        for line in handle:
            entry = orjson.loads(line)
            yield float(entry["t"]), orjson.dumps(entry["msg"])


def time_bare_file(path: Path) -> float:
    """gunzip + one orjson.loads per line: the floor for replaying the file at full speed."""
    started = time.perf_counter()
    with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as handle:
        for line in handle:
            orjson.loads(line)
    return time.perf_counter() - started


def time_replay(read: Callable[[Path], Iterable[tuple[float, bytes]]], path: Path) -> float:
    """Replay read (gunzip included) + the pipeline, as ``ingest_mempool`` runs a replay."""
    pipeline = FramePipeline(source="bench", projection_interval=1.0)
    started = time.perf_counter()
    for t, raw in read(path):
        pipeline.process(t, raw)
    return time.perf_counter() - started


def replay_figures(path: Path, rounds: int) -> dict[str, float]:
    best = {"bare": math.inf, "before": math.inf, "after": math.inf}
    for _ in range(rounds):
        gc.collect()
        best["bare"] = min(best["bare"], time_bare_file(path))
        gc.collect()
        best["before"] = min(best["before"], time_replay(decode_every_line, path))
        gc.collect()
        best["after"] = min(best["after"], time_replay(read_recording, path))
    return best


def ingest_process_env(workdir: Path, prefix: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DEBUG="true",
        DATABASE_URL=f"sqlite:///{workdir / 'ingest.sqlite3'}",
        WHALE_VAR_DIR=str(workdir),
        REDIS_KEY_PREFIX=prefix,
        WHALE_INGEST_METRICS_PORT="0",
        WHALE_BLOCK_SCAN="false",
    )
    return env


def time_ingest_process(path: Path, rounds: int) -> float:
    """Wall time of the whole ``ingest_mempool`` process replaying ``path`` at full speed: start,
    Django setup, the replay, publishing the events to the broker, the position file, exit."""
    best = math.inf
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        workdir = Path(tmp)
        prefix = f"bench-ingest-{uuid.uuid4().hex[:8]}"
        env = ingest_process_env(workdir, prefix)
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run(
            [*manage, "migrate", "--noinput", "-v", "0"],
            env=env,
            check=True,
            stderr=subprocess.DEVNULL,  # SQLite's W040 index warning, irrelevant here
        )
        source = f"replay:{path}?speed=0"
        try:
            for _ in range(rounds):
                gc.collect()
                started = time.perf_counter()
                subprocess.run(
                    [*manage, "ingest_mempool", "--source", source],
                    env=env,
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
                best = min(best, time.perf_counter() - started)
        finally:
            client = redis.Redis.from_url(env.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
            for key in client.scan_iter(f"{prefix}*", count=1000):
                client.delete(key)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--recording", type=Path)
    parser.add_argument("--write-recording", type=Path, default=None)
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
    if not args.recording:
        args.write_recording = args.write_recording or DEFAULT_RECORDING
        args.write_recording.parent.mkdir(parents=True, exist_ok=True)
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
        target="<= 2x",
        met=full / loads <= 2.0,
    )
    report.add(
        "the same without the timed projection", f"{txs / bare:,.0f} tx/s, {bare / loads:.2f}x"
    )
    report.add(
        "ingest mempool with parent links (package projection)",
        f"{len(full_pipeline.state.parents):,} txs with an unconfirmed parent",
    )
    replay_file = args.recording or args.write_recording
    if replay_file is not None:
        replay = replay_figures(replay_file, rounds)
        print(
            f"replay of {replay_file}: gunzip + loads {replay['bare']:.2f} s; "
            f"read + pipeline before {replay['before']:.2f} s "
            f"({replay['before'] / replay['bare']:.2f}x), "
            f"after {replay['after']:.2f} s ({replay['after'] / replay['bare']:.2f}x)"
        )
        report.add(
            "replay read + pipeline, as a ratio to gunzip + parse of the same file",
            f"{replay['after'] / replay['bare']:.2f}x "
            f"(decoding every line first: {replay['before'] / replay['bare']:.2f}x)",
            target="<= 2.5x",
            met=replay["after"] / replay["bare"] <= 2.5,
        )
        process = time_ingest_process(replay_file, rounds=2)
        print(
            f"whole ingest_mempool process over {replay_file}: {process:.2f} s "
            f"({process / replay['bare']:.2f}x gunzip + loads)"
        )
        report.add(
            "whole `ingest_mempool` process replaying the file at full speed, as a ratio to "
            "gunzip + parse of it",
            f"{process / replay['bare']:.2f}x ({process:.1f} s, best of 2)",
            target="<= 2.5x",
            met=process / replay["bare"] <= 2.5,
        )
    report.note(f"Input: {origin}. Best of {rounds} interleaved rounds of each variant.")
    report.save(args.json)


if __name__ == "__main__":
    main()
