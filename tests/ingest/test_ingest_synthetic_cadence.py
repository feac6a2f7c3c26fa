"""SyntheticMempool(whale_every_s=...): a fixed whale cadence, for the full-stack benchmarks."""

from __future__ import annotations

import itertools

import pytest

from detection.ingest.sources.synthetic import SyntheticMempool
from detection.txshape import SATS_PER_BTC

WHALE = 100 * SATS_PER_BTC


def whales_per_frame(generator: SyntheticMempool, frames: int) -> list[tuple[float, int]]:
    seen = []
    for t, frame in itertools.islice(generator.frames(), frames):
        if "block" in frame:
            continue
        delta = frame["mempool-transactions"]
        replacing = {entry["by"]["txid"] for entry in delta["replaced"]}
        new_whales = [
            tx
            for tx in delta["added"]
            if tx["txid"] not in replacing and sum(o["value"] for o in tx["vout"]) >= WHALE
        ]
        seen.append((t, len(new_whales)))
    return seen


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_whale_every_second_whatever_the_seed(seed):
    generator = SyntheticMempool(seed=seed, tx_per_s=50, whale_every_s=1.0, block_interval=30)
    counts = whales_per_frame(generator, 200)
    assert len(counts) >= 150
    assert all(n == 1 for _t, n in counts)


def test_slower_cadence_and_random_whales_off():
    generator = SyntheticMempool(seed=7, tx_per_s=20, whale_ratio=0.5, whale_every_s=5.0)
    counts = whales_per_frame(generator, 60)
    # whale_ratio is ignored with a cadence: exactly one whale in every fifth second.
    assert [t for t, n in counts if n] == [5.0 * k for k in range(1, 13)]
    assert all(n in (0, 1) for _t, n in counts)


def test_deterministic_for_a_seed():
    def run():
        generator = SyntheticMempool(seed=11, tx_per_s=7, whale_every_s=1.0)
        return [frame for _t, frame in itertools.islice(generator.frames(), 30)]

    assert run() == run()


def test_bad_cadence_is_refused():
    with pytest.raises(ValueError, match="whale_every_s"):
        SyntheticMempool(whale_every_s=0)
