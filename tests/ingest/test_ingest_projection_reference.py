"""The package projection against a slow, literal reading of Core's ``addPackageTxs`` (exact
fractions, the best candidate recomputed at every step) on random small mempools full of ties,
chains and full blocks."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from detection.ingest.projection import BlockLimits, adjusted_vsize, project


def reference(records, parents, limits):
    txids = list(records)
    vsize = {t: adjusted_vsize(records[t][1], records[t][3]) for t in txids}

    def ancestors(t, seen=None):
        seen = set() if seen is None else seen
        for p in parents.get(t, ()):
            if p in records and p not in seen:
                seen.add(p)
                ancestors(p, seen)
        return seen

    all_ancestors = {t: ancestors(t) for t in txids}
    descendants = {t: {d for d in txids if t in all_ancestors[d]} for t in txids}
    uint = {t: int.from_bytes(bytes.fromhex(t), "little") for t in txids}
    included: set[str] = set()
    blocks = []
    for _ in range(limits.max_blocks - 1):
        if len(included) == len(txids):
            break

        def package(t):
            members = [a for a in all_ancestors[t] if a not in included] + [t]
            return (
                members,
                sum(records[m][0] for m in members),
                sum(vsize[m] for m in members),
                sum(records[m][3] for m in members),
            )

        def key(t):
            _members, fee, size, _sigops = package(t)
            own = Fraction(records[t][0], vsize[t])
            return (min(own, Fraction(fee, size)), -uint[t])

        start_key = {t: key(t) for t in txids if t not in included}
        modified: set[str] = set()
        failed: set[str] = set()
        passed: set[str] = set()
        block: list[str] = []
        weight, sigops, failures = limits.reserved_weight, limits.reserved_sigops, 0
        while True:
            plain = [t for t in start_key if t not in included | modified | failed | passed]
            changed = [t for t in modified if t not in included]
            best_plain = max(plain, key=start_key.__getitem__, default=None)
            best_changed = max(changed, key=key, default=None)
            if best_plain is None and best_changed is None:
                break
            using_modified = best_changed is not None and (
                best_plain is None or key(best_changed) > start_key[best_plain]
            )
            candidate = best_changed if using_modified else best_plain
            if not using_modified:
                passed.add(candidate)
            members, fee, size, package_sigops = package(candidate)
            if fee * 1000 < limits.min_fee_rate_per_kvb * size:
                break
            if (
                weight + 4 * size >= limits.max_weight
                or sigops + package_sigops >= limits.max_sigops
            ):
                if using_modified:
                    modified.discard(candidate)
                    failed.add(candidate)
                failures += 1
                if failures > 1000 and weight > limits.max_weight - 4000:
                    break
                continue
            failures = 0
            members.sort(key=lambda m: (len(all_ancestors[m]), uint[m]))
            for m in members:
                included.add(m)
                block.append(m)
                weight += records[m][1]
                sigops += records[m][3]
            for m in members:
                modified.update(d for d in descendants[m] if d not in included)
        blocks.append(block)
    return blocks


@pytest.mark.parametrize("seed", range(12))
def test_matches_the_literal_reading_of_core(seed):
    rng = random.Random(seed)
    records, parents = {}, {}
    txids = [f"{rng.getrandbits(256):064x}" for _ in range(150)]
    for n, txid in enumerate(txids):
        weight = rng.choice([400, 560, 800, 1_200, 2_000])
        fee = rng.choice([100, 140, 200, 280, 400, 1_000, 3_000])  # many equal rates
        sigops = rng.choice([0, 0, 1, 4, 30])
        records[txid] = (fee, weight, fee / (weight / 4), sigops)
        if n and rng.random() < 0.4:
            parents[txid] = rng.sample(txids[max(0, n - 20) : n], k=min(n, rng.choice([1, 1, 2])))
    limits = BlockLimits(max_weight=30_000, reserved_weight=2_000, min_fee_rate_per_kvb=1_000)
    projection = project(records, parents=parents, limits=limits)
    expected = reference(records, parents, limits)
    got = [[t for t, b in projection.block_index.items() if b == n] for n in range(len(expected))]
    assert projection.next_block == expected[0]
    assert [sorted(block) for block in got] == [sorted(block) for block in expected]
