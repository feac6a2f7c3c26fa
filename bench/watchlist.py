"""Watchlists (issue 21): ingest throughput with 100,000 watched addresses against none, and the
memory those addresses take in the ingest.

    .venv/bin/python bench/watchlist.py [--txs 200000] [--watched 100000] [--seed 1]

The frames are the synthetic mempool of bench/ingest_throughput.py (deterministic for a seed),
through ``FramePipeline`` exactly as the live reader runs them. The watched set is 100,000
distinct mainnet P2WPKH addresses (random programs) plus 20 addresses that do occur in the
frames, so the hit path (a tx below the floor followed like a whale) is part of the run. Runs are
interleaved, best of 5 each, in CPU time. Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import sys
import time
import tracemalloc
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest_throughput import synthetic_frames  # noqa: E402
from bench.results import Results, add_json_argument  # noqa: E402
from detection.domain.addresses import encode_segwit_address  # noqa: E402
from detection.domain.xpub import RECEIVE, parse_extended_key  # noqa: E402
from detection.ingest.runner import FramePipeline  # noqa: E402
from detection.ingest.watch import EMPTY, WatchSet  # noqa: E402

# BIP84's published test vector account (mnemonic "abandon ... about").
BIP84_ZPUB = (
    "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGD"
    "tKsAYz2oz2AGutZYs"
)


def random_addresses(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [encode_segwit_address(0, rng.randbytes(20)) for _ in range(count)]


def addresses_in(frames: list[bytes], count: int) -> list[str]:
    found: list[str] = []
    for raw in frames:
        for tx in (orjson.loads(raw).get("mempool-transactions") or {}).get("added") or []:
            address = tx["vout"][0].get("scriptpubkey_address")
            if address and sum(o["value"] for o in tx["vout"]) < 100 * 10**8:
                found.append(address)
                if len(found) >= count:
                    return found
    return found


def time_pipeline(frames: list[bytes], watch_set: WatchSet) -> tuple[float, int]:
    """CPU seconds to run the frames, and the watch hits followed.

    CPU time, not wall time: the bench host is shared, and waiting for a core is not ingest
    work. Nothing of a run is kept, so every run starts from the same heap."""
    pipeline = FramePipeline(source="bench", projection_interval=math.inf)
    pipeline.parser.watch_set = watch_set
    started = time.process_time()
    for i, raw in enumerate(frames):
        pipeline.process(float(i), raw)
    return time.process_time() - started, pipeline.parser.watch_hits


def memory_of(addresses: list[str]) -> float:
    """MiB the ingest holds for these addresses: the strings and the frozenset, as loaded."""
    copies = [bytes(a, "ascii").decode() for a in addresses]  # fresh strings, as from the DB
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    watch_set = WatchSet([bytes(a, "ascii").decode() for a in copies], 1)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(watch_set) == len(set(addresses))
    return (after - before) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=200_000)
    parser.add_argument("--watched", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    add_json_argument(parser)
    args = parser.parse_args()
    report = Results("watchlist", "Watchlists")

    frames, txs = synthetic_frames(args.txs, args.seed)
    real = addresses_in(frames, 20)
    randoms = random_addresses(args.watched, args.seed)
    unmatched = WatchSet(randoms, 1)
    watched = WatchSet(randoms[: args.watched - len(real)] + real, 1)
    rounds = args.rounds
    best: dict[str, tuple[float, int]] = {}
    variants = (("none", EMPTY), ("unmatched", unmatched), ("watched", watched))
    for _ in range(rounds):
        for label, watch_set in variants:
            gc.collect()
            elapsed, hits = time_pipeline(frames, watch_set)
            if label not in best or elapsed < best[label][0]:
                best[label] = (elapsed, hits)
    none, _ = best["none"]
    lookups, _ = best["unmatched"]
    full, watch_hits = best["watched"]
    slower = full / none - 1
    lookup_cost = lookups / none - 1
    print(f"input: {txs:,} txs in {len(frames)} frames (synthetic seed={args.seed})")
    print(f"no watched addresses:      {none:6.2f} s  {txs / none:10,.0f} tx/s")
    print(
        f"{len(unmatched):,} watched, none used: {lookups:6.2f} s  {txs / lookups:10,.0f} tx/s  "
        f"({lookup_cost:+.1%})"
    )
    print(
        f"{len(watched):,} watched addresses: {full:6.2f} s  {txs / full:10,.0f} tx/s  "
        f"({slower:+.1%}; {watch_hits} watch hits followed)"
    )
    mib = memory_of(list(watched.addresses))
    print(f"memory for {len(watched):,} watched addresses: {mib:.1f} MiB")
    key = parse_extended_key(BIP84_ZPUB)
    started = time.perf_counter()
    key.addresses(RECEIVE, 0, 50)
    derive_ms = (time.perf_counter() - started) * 1000
    print(f"deriving one zpub's 50 receive addresses: {derive_ms:.1f} ms")

    report.add("input", f"{txs:,} synthetic txs in {len(frames)} frames")
    report.add(
        f"ingest throughput with {len(unmatched):,} watched addresses none of the txs use",
        f"{txs / lookups:,.0f} vs {txs / none:,.0f} tx/s without ({lookup_cost:+.1%})",
        target="within 10 %",
        met=lookup_cost <= 0.10,
    )
    report.add(
        f"the same with 20 of them used ({watch_hits} txs followed as hits)",
        f"{txs / full:,.0f} tx/s ({slower:+.1%})",
        target="within 10 %",
        met=slower <= 0.10,
    )
    report.add(f"memory for {len(watched):,} watched addresses in the ingest", f"{mib:.1f} MiB")
    report.add("deriving 50 addresses of a zpub (embit)", f"{derive_ms:.1f} ms")
    report.note(
        f"CPU time, best of {rounds} interleaved rounds each; {watch_hits} txs below the floor "
        "were followed as watch hits. The host is shared with other work: compare the ratio."
    )
    report.save(args.json)


if __name__ == "__main__":
    main()
