"""Resident memory of the ingest process holding a 300,000-tx mempool.

    .venv/bin/python bench/ingest_memory.py [--txs 300000] [--seed 1] [--recording PATH]

A child process writes a synthetic recording (no blocks, so the mempool only grows) unless
``--recording`` is given; this process then replays it through ``FramePipeline`` (parser, state,
lifecycle, projection), so the generator's own memory is not counted. Prints RSS (psutil) at
start, after loading, after a projection, and the peak. DESIGN target: <= 250 MB for the whole
process. Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

import orjson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.results import Results, add_json_argument  # noqa: E402
from detection.ingest.runner import FramePipeline  # noqa: E402
from detection.ingest.sources import Recorder, SyntheticMempool, read_recording  # noqa: E402


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def write_synthetic_recording(path: str, txs: int, seed: int) -> None:
    generator = SyntheticMempool(
        seed=seed, tx_per_s=2_000, whale_ratio=0.001, block_interval=1e12, mempool_blocks_every=1e12
    )
    with Recorder(path) as recorder:
        for t, frame in generator.frames():
            recorder.write(t, orjson.dumps(frame), valid_json=True)
            if len(generator.records) >= txs:
                break


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--recording", type=Path)
    add_json_argument(parser)
    args = parser.parse_args()
    report = Results(
        "ingest_memory",
        "Ingest memory",
    )

    with tempfile.TemporaryDirectory() as tmp:
        path = args.recording
        if path is None:
            path = Path(tmp) / "mempool.jsonl.gz"
            started = time.perf_counter()
            child = multiprocessing.get_context("spawn").Process(
                target=write_synthetic_recording, args=(str(path), args.txs, args.seed)
            )
            child.start()
            child.join()
            if child.exitcode != 0:
                raise SystemExit("generating the recording failed")
            print(
                f"generated {path.stat().st_size / 2**20:.0f} MiB recording in "
                f"{time.perf_counter() - started:.0f} s (child process)"
            )
        gc.collect()
        baseline = rss_mb()
        print(f"RSS at start (interpreter + imports):     {baseline:7.1f} MB")
        pipeline = FramePipeline(source="bench-memory", projection_interval=1.0)
        started = time.perf_counter()
        for t, raw in read_recording(path):
            pipeline.process(t, raw)
        elapsed = time.perf_counter() - started
        del raw
        gc.collect()
        loaded = rss_mb()
        print(
            f"mempool: {len(pipeline.state):,} txs, {len(pipeline.state.whales)} whales, "
            f"{len(pipeline.tracker.pending)} pending chains (loaded in {elapsed:.1f} s)"
        )
        print(
            f"RSS holding the mempool:                  {loaded:7.1f} MB "
            f"(+{loaded - baseline:.1f} MB, {(loaded - baseline) * 2**20 / max(len(pipeline.state), 1):.0f} B/tx)"
        )
        projection = pipeline.project(time.time())
        projection.fee_percentile(10.0)
        print(
            f"RSS with a live projection:               {rss_mb():7.1f} MB "
            f"(projection {pipeline.projection_ms:.0f} ms)"
        )
        del projection
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process:                 {peak:7.1f} MB")
        print("target: <= 250 MB for the whole process")
        per_tx = (loaded - baseline) * 2**20 / max(len(pipeline.state), 1)
        report.add("RSS at start (interpreter + imports)", f"{baseline:.0f} MB")
        report.add(
            f"RSS holding a {len(pipeline.state):,}-transaction mempool",
            f"{loaded:.0f} MB ({per_tx:.0f} bytes per transaction)",
            target="<= 250 MB",
            met=loaded <= 250,
        )
        report.add(
            "peak RSS of the process (during a projection)",
            f"{peak:.0f} MB",
            target="<= 250 MB",
            met=peak <= 250,
        )
        report.add("one projection of the whole mempool", f"{pipeline.projection_ms:.0f} ms")
        report.save(args.json)


if __name__ == "__main__":
    main()
