"""Synthetic mempool.space stream: realistic frames that go through the real parser.

``synthetic:[?seed=N&tx_per_s=N&whale_ratio=N&whale_every_s=S&speed=N&block_interval=S&rbf_ratio=N
&cpfp_ratio=N&frames=N]`` — deterministic for a given seed (frame content, not wall-clock receive times).

``whale_every_s=S`` (for benchmarks) puts exactly one whale
per S simulated seconds (in the frame of the second it falls due) instead of drawing whales at
random, and ``whale_ratio`` is ignored: a benchmark then knows how many whales to expect and
when, whatever the seed. (An RBF replacement of a whale keeps its value, so it is a whale too.)

One ``mempool-transactions`` frame per simulated second (like mempool.space's ~1 s cadence) with
Poisson(``tx_per_s``) new txs. Distributions:

- **shape**: inputs 1 + Geometric(0.55) (max 20), outputs 2 (75 %), 1 (15 %) or a batch of
  3-30 (10 %); P2WPKH (90 %) / P2TR (10 %) scripts, so vsize = 11 + 68/input + 31-43/output,
  i.e. mostly 140-1,000 vB with a long tail from many-input txs; weight = 4 × vsize − (0..3);
  sigops = number of inputs.
- **value** (output sum): non-whales lognormal(median 0.02 BTC, σ = 2.2) redrawn until < 100
  BTC; with probability ``whale_ratio`` a whale: 100 BTC × Pareto(α = 1.5), capped at 50,000 BTC.
  Change output takes a uniform 5-95 % share; batches split evenly with noise.
- **fee rate**: lognormal(median 15 sat/vB, σ = 0.9), floored at 1 sat/vB; fee = rate × vsize.
- **RBF** (``rbf_ratio`` of new-tx slots, default 2 %): a recent pending tx is replaced by a tx
  spending the same inputs with 1.1-2× the fee (+1 sat/vB), via ``replaced`` + ``removed``.
- **CPFP** (``cpfp_ratio``, default 1 %): a child spends output 0 of a recent below-median tx at
  3-10× its rate + 20 sat/vB; the child's ``effectiveFeePerVsize`` is the package rate and the
  parent's mining rate is lifted to it.
- **eviction**: 0.2 % of slots remove a random recent low-fee tx (``removed`` only).
- **blocks**: Poisson arrivals, exponential gaps with mean ``block_interval`` (600 s): a frame with
  ``block`` + ``mempool-transactions.mined`` (coinbase + the best ~4 MWU by rate) + ``mempool-blocks``.
- **prices**: a ``conversions`` object (USD, EUR, GBP, CAD, CHF, AUD, JPY) in the first frame and
  every ``conversions_every`` (60) simulated seconds, like mempool.space's init data and price
  pushes: USD starts at 69,880 and walks ±0.2 % a step, the others keep their real 2024-03-31
  ratios to it (tests/fixtures/mempool/mainnet_mempoolInfo.json). Drawn from their own random
  stream, so the transactions of a seed are the same with or without them.
- ``mempool-blocks`` also every 10 simulated seconds, from ``projection.project`` over the
  generator's own mempool; ``sequence`` increases by one per frame.

Addresses are bech32 (P2WPKH) / bech32m (P2TR) with valid checksums over random programs; 70 %
of outputs reuse an address seen before (``address_reuse``), as real wallets and exchanges do.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson

from detection.domain.addresses import encode_segwit_address
from detection.ingest.projection import BlockLimits, project
from detection.ingest.sources.base import Frame, StaticStatus
from detection.txshape import SATS_PER_BTC

# Other currencies per USD, from the real init data of 2024-03-31 (USD 69,880).
SYNTHETIC_PRICE_RATIOS = {
    "EUR": 64823 / 69880,
    "GBP": 55198 / 69880,
    "CAD": 95154 / 69880,
    "CHF": 63041 / 69880,
    "AUD": 107374 / 69880,
    "JPY": 10601000 / 69880,
}


class SyntheticMempool:
    """Deterministic generator of (simulated time, frame dict)."""

    def __init__(
        self,
        *,
        seed: int = 1,
        tx_per_s: float = 7.0,
        whale_ratio: float = 0.001,
        block_interval: float = 600.0,
        rbf_ratio: float = 0.02,
        cpfp_ratio: float = 0.01,
        evict_ratio: float = 0.002,
        mempool_blocks_every: float = 10.0,
        start_height: int = 900_000,
        start_time: int = 1_750_000_000,
        address_reuse: float = 0.7,
        whale_every_s: float | None = None,
        conversions_every: float = 60.0,
    ) -> None:
        if tx_per_s <= 0 or not 0 <= whale_ratio <= 1 or block_interval <= 0:
            raise ValueError("tx_per_s and block_interval must be > 0, whale_ratio in [0, 1]")
        if whale_every_s is not None and whale_every_s <= 0:
            raise ValueError("whale_every_s must be > 0")
        self.rng = random.Random(seed)
        self.tx_per_s = tx_per_s
        self.whale_ratio = whale_ratio
        self.block_interval = block_interval
        self.rbf_ratio = rbf_ratio
        self.cpfp_ratio = cpfp_ratio
        self.evict_ratio = evict_ratio
        self.mempool_blocks_every = mempool_blocks_every
        self.height = start_height
        self.start_time = start_time
        self.tip_hash = self._hash()
        self.t = 0.0
        self.sequence = 0
        self.next_block_at = self.rng.expovariate(1.0 / block_interval)
        self.next_mempool_blocks_at = 0.0
        # txid -> (fee, weight, mining rate, sigops): what the "server" would mine next
        self.records: dict[str, tuple[int, int, float, int]] = {}
        self.recent: deque[dict[str, Any]] = deque(maxlen=5_000)  # RBF / CPFP candidates
        self.counts = {"txs": 0, "whales": 0, "replacements": 0, "cpfp": 0, "blocks": 0}
        self.addresses: list[tuple[bool, str, str]] = []
        self.address_reuse = address_reuse
        self.whale_every_s = whale_every_s
        # With a fixed cadence, random draws must not add whales the cadence did not ask for.
        self._random_whale_ratio = 0.0 if whale_every_s is not None else whale_ratio
        self.next_whale_at = whale_every_s or 0.0
        self.price_rng = random.Random(f"prices-{seed}")
        self.usd_price = 69_880.0
        self.conversions_every = conversions_every
        self.next_conversions_at = 0.0

    # -- primitives -------------------------------------------------------------------------

    def _hash(self) -> str:
        return f"{self.rng.getrandbits(256):064x}"

    def _poisson(self, mean: float) -> int:
        if mean > 30:
            return max(0, round(self.rng.gauss(mean, math.sqrt(mean))))
        limit, k, p = math.exp(-mean), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1

    def _output(self, value: int) -> dict[str, Any]:
        taproot, hex_program, address = self._address()
        if taproot:
            return {
                "scriptpubkey": "5120" + hex_program,
                "scriptpubkey_asm": "OP_PUSHNUM_1 OP_PUSHBYTES_32 " + hex_program,
                "scriptpubkey_type": "v1_p2tr",
                "scriptpubkey_address": address,
                "value": value,
            }
        return {
            "scriptpubkey": "0014" + hex_program,
            "scriptpubkey_asm": "OP_0 OP_PUSHBYTES_20 " + hex_program,
            "scriptpubkey_type": "v0_p2wpkh",
            "scriptpubkey_address": address,
            "value": value,
        }

    def _address(self) -> tuple[bool, str, str]:
        """A fresh address, or (70 %) one seen before: real addresses get reused, and checksums
        are the generator's hottest code."""
        rng = self.rng
        pool = self.addresses
        if len(pool) > 100 and rng.random() < self.address_reuse:
            return pool[rng.randrange(len(pool))]
        taproot = rng.random() < 0.1
        program = rng.getrandbits(256 if taproot else 160).to_bytes(32 if taproot else 20)
        entry = (taproot, program.hex(), encode_segwit_address(1 if taproot else 0, program))
        if len(pool) < 200_000:
            pool.append(entry)
        else:
            pool[rng.randrange(len(pool))] = entry
        return entry

    def _split(self, total: int, parts: int) -> list[int]:
        if parts == 1:
            return [total]
        if parts == 2:
            first = int(total * self.rng.uniform(0.05, 0.95))
            return [first, total - first]
        weights = [self.rng.uniform(0.5, 1.5) for _ in range(parts)]
        scale = total / sum(weights)
        values = [int(w * scale) for w in weights]
        values[0] += total - sum(values)
        return values

    def _whale_value(self) -> int:
        btc = min(100.0 * self.rng.paretovariate(1.5), 50_000.0)
        return max(int(btc * SATS_PER_BTC), 100 * SATS_PER_BTC)

    def _value(self) -> tuple[int, bool]:
        rng = self.rng
        if rng.random() < self._random_whale_ratio:
            return self._whale_value(), True
        while True:
            btc = rng.lognormvariate(math.log(0.02), 2.2)
            if btc < 100.0:
                return max(int(btc * SATS_PER_BTC), 546), False

    def _fee_rate(self) -> float:
        return max(1.0, self.rng.lognormvariate(math.log(15.0), 0.9))

    def _n_outputs(self) -> int:
        roll = self.rng.random()
        if roll < 0.75:
            return 2
        if roll < 0.90:
            return 1
        return self.rng.randint(3, 30)

    def _build(
        self,
        value: int,
        rate: float,
        vin: list[dict[str, Any]] | None = None,
        outputs: list[dict[str, Any]] | None = None,
        effective_rate: float | None = None,
    ) -> dict[str, Any]:
        rng = self.rng
        if outputs is None:
            outputs = [self._output(v) for v in self._split(value, self._n_outputs())]
        n_in = (
            len(vin)
            if vin is not None
            else min(20, 1 + int(math.log(rng.random()) / math.log(0.45)))
        )
        vsize = (
            11 + 68 * n_in + sum(43 if o["scriptpubkey_type"] == "v1_p2tr" else 31 for o in outputs)
        )
        weight = 4 * vsize - rng.randint(0, 3)
        vsize = (weight + 3) // 4
        fee = max(vsize, round(rate * vsize))
        if vin is None:
            in_values = self._split(sum(o["value"] for o in outputs) + fee, n_in)
            vin = [self._input(v) for v in in_values]
        rate = fee / vsize
        txid = self._hash()
        tx = {
            "txid": txid,
            "version": 2,
            "locktime": 0,
            "vin": vin,
            "vout": outputs,
            "size": vsize + 2 * n_in,
            "weight": weight,
            "sigops": n_in,
            "fee": fee,
            "status": {"confirmed": False},
            "order": rng.getrandbits(32),
            "vsize": vsize,
            "adjustedVsize": vsize,
            "feePerVsize": rate,
            "adjustedFeePerVsize": rate,
            "effectiveFeePerVsize": effective_rate if effective_rate is not None else rate,
            "firstSeen": int(self.start_time + self.t),
            "flags": (1 << 0) | (1 << 3) | (1 << 12),
        }
        return tx

    def _input(self, value: int) -> dict[str, Any]:
        rng = self.rng
        prevout = self._output(value)
        return {
            "txid": self._hash(),
            "vout": rng.randint(0, 3),
            "prevout": prevout,
            "scriptsig": "",
            "scriptsig_asm": "",
            "witness": [f"{rng.getrandbits(568):0142x}", f"02{rng.getrandbits(256):064x}"],
            "is_coinbase": False,
            "sequence": 0xFFFFFFFD,
        }

    # -- frame pieces -----------------------------------------------------------------------

    def _admit(self, tx: dict[str, Any], mining_rate: float | None = None) -> None:
        rate = mining_rate if mining_rate is not None else tx["effectiveFeePerVsize"]
        self.records[tx["txid"]] = (tx["fee"], tx["weight"], rate, tx["sigops"])
        self.recent.append(tx)
        self.counts["txs"] += 1

    def _pick_recent(self, predicate: Any = None) -> dict[str, Any] | None:
        for _ in range(8):
            if not self.recent:
                return None
            tx = self.recent[self.rng.randrange(len(self.recent))]
            if tx["txid"] in self.records and (predicate is None or predicate(tx)):
                return tx
        return None

    def _cpfp_candidate(self, tx: dict[str, Any]) -> bool:
        if tx["effectiveFeePerVsize"] >= 15.0:
            return False
        # A child of a whale carries most of its value on, so it is a whale too: with a fixed
        # cadence that would be a whale the cadence did not ask for.
        return self.whale_every_s is None or tx["vout"][0]["value"] < 100 * SATS_PER_BTC

    def _replacement(self, old: dict[str, Any]) -> dict[str, Any]:
        factor = self.rng.uniform(1.1, 2.0)
        new_fee = int(old["fee"] * factor) + old["vsize"]
        outputs = [dict(o) for o in old["vout"]]
        outputs[-1]["value"] = max(0, outputs[-1]["value"] - (new_fee - old["fee"]))
        return self._build(0, new_fee / old["vsize"], vin=old["vin"], outputs=outputs)

    def _cpfp_child(self, parent: dict[str, Any]) -> dict[str, Any]:
        parent_rate = parent["effectiveFeePerVsize"]
        child_rate = parent_rate * self.rng.uniform(3, 10) + 20
        spent = parent["vout"][0]
        vin = [
            {
                "txid": parent["txid"],
                "vout": 0,
                "prevout": dict(spent),
                "scriptsig": "",
                "scriptsig_asm": "",
                "witness": [
                    f"{self.rng.getrandbits(568):0142x}",
                    f"03{self.rng.getrandbits(256):064x}",
                ],
                "is_coinbase": False,
                "sequence": 0xFFFFFFFD,
            }
        ]
        child_vsize = 11 + 68 + 31
        child_fee = round(child_rate * child_vsize)
        outputs = [self._output(max(spent["value"] - child_fee, 546))]
        package = (parent["fee"] + child_fee) / (parent["vsize"] + child_vsize)
        child = self._build(0, child_rate, vin=vin, outputs=outputs, effective_rate=package)
        # The server's projection now mines the pair at the package rate.
        record = self.records[parent["txid"]]
        self.records[parent["txid"]] = (record[0], record[1], max(record[2], package), record[3])
        return child

    def _mempool_blocks(self) -> list[dict[str, Any]]:
        projection = project(self.records, limits=BlockLimits(), made_at=0.0)
        return [
            {
                "blockSize": int(b.weight / 4 * 1.6),
                "blockVSize": b.weight / 4,
                "nTx": b.tx_count,
                "totalFees": b.fees,
                "medianFee": b.median_fee_rate,
                "feeRange": list(b.fee_range),
            }
            for b in projection.blocks
        ]

    def _block_frame(self) -> dict[str, Any]:
        ranked = sorted(self.records.items(), key=lambda item: item[1][2], reverse=True)
        mined, weight, fees = [], 4_000, 0
        for txid, (fee, tx_weight, _rate, _sigops) in ranked:
            if weight + tx_weight > 3_996_000:
                if weight > 3_990_000:
                    break
                continue
            mined.append(txid)
            weight += tx_weight
            fees += fee
        for txid in mined:
            del self.records[txid]
        coinbase = self._hash()
        previous, self.tip_hash = self.tip_hash, self._hash()
        self.height += 1
        self.counts["blocks"] += 1
        timestamp = int(self.start_time + self.t)
        return {
            "block": {
                "id": self.tip_hash,
                "height": self.height,
                "version": 0x20000000,
                "timestamp": timestamp,
                "bits": 386_038_124,
                "nonce": self.rng.getrandbits(32),
                "difficulty": 113_757_508_810_854,
                "merkle_root": self._hash(),
                "tx_count": len(mined) + 1,
                "size": int(weight / 4 * 1.6),
                "weight": weight,
                "previousblockhash": previous,
                "mediantime": timestamp - 3_000,
                "stale": False,
                "extras": {"totalFees": fees, "reward": fees + 312_500_000},
            },
            "mempool-transactions": {
                "sequence": self._next_sequence(),
                "added": [],
                "removed": [],
                "mined": [coinbase, *mined],
                "replaced": [],
            },
            "mempool-blocks": self._mempool_blocks(),
        }

    def _conversions(self) -> dict[str, Any]:
        self.usd_price *= 1.0 + self.price_rng.uniform(-0.002, 0.002)
        usd = round(self.usd_price)
        prices = {code: round(usd * ratio) for code, ratio in SYNTHETIC_PRICE_RATIOS.items()}
        return {"time": int(self.start_time + self.t), "USD": usd, **prices}

    def _next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence

    # -- the stream -------------------------------------------------------------------------

    def frames(self) -> Iterator[tuple[float, dict[str, Any]]]:
        rng = self.rng
        while True:
            self.t += 1.0
            while self.t >= self.next_block_at:
                yield self.next_block_at, self._block_frame()
                self.next_block_at += rng.expovariate(1.0 / self.block_interval)
            added: list[dict[str, Any]] = []
            removed: list[str] = []
            replaced: list[dict[str, Any]] = []
            for _ in range(self._poisson(self.tx_per_s)):
                roll = rng.random()
                if roll < self.rbf_ratio:
                    old = self._pick_recent()
                    if old is not None:
                        new = self._replacement(old)
                        del self.records[old["txid"]]
                        self._admit(new)
                        added.append(new)
                        removed.append(old["txid"])
                        replaced.append({"replaced": old["txid"], "by": new})
                        self.counts["replacements"] += 1
                        continue
                elif roll < self.rbf_ratio + self.cpfp_ratio:
                    parent = self._pick_recent(self._cpfp_candidate)
                    if parent is not None:
                        child = self._cpfp_child(parent)
                        self._admit(child)
                        added.append(child)
                        self.counts["cpfp"] += 1
                        continue
                elif roll < self.rbf_ratio + self.cpfp_ratio + self.evict_ratio:
                    victim = self._pick_recent(lambda tx: tx["effectiveFeePerVsize"] < 5.0)
                    if victim is not None:
                        del self.records[victim["txid"]]
                        removed.append(victim["txid"])
                        continue
                value, whale = self._value()
                tx = self._build(value, self._fee_rate())
                self._admit(tx)
                added.append(tx)
                self.counts["whales"] += whale
            if self.whale_every_s is not None:
                while self.t >= self.next_whale_at:
                    self.next_whale_at += self.whale_every_s
                    whale_tx = self._build(self._whale_value(), self._fee_rate())
                    self._admit(whale_tx)
                    added.append(whale_tx)
                    self.counts["whales"] += 1
            frame: dict[str, Any] = {
                "mempool-transactions": {
                    "sequence": self._next_sequence(),
                    "added": added,
                    "removed": removed,
                    "mined": [],
                    "replaced": replaced,
                }
            }
            if self.t >= self.next_conversions_at:
                frame["conversions"] = self._conversions()
                self.next_conversions_at = self.t + self.conversions_every
            if self.t >= self.next_mempool_blocks_at:
                frame["mempool-blocks"] = self._mempool_blocks()
                self.next_mempool_blocks_at = self.t + self.mempool_blocks_every
            yield self.t, frame


class SyntheticSource(StaticStatus):
    def __init__(
        self,
        spec: str,
        *,
        speed: float = 1.0,
        max_frames: int | None = None,
        **generator_options: Any,
    ) -> None:
        if speed < 0:
            raise ValueError("synthetic speed must be >= 0")
        self.spec = spec
        self.speed = speed
        self.max_frames = max_frames
        self.generator = SyntheticMempool(**generator_options)
        self._closing = False
        self.frames = 0

    def __aiter__(self) -> AsyncIterator[Frame]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[Frame]:
        self._open = True
        started = time.monotonic()
        try:
            for t, frame in self.generator.frames():
                if self._closing or (
                    self.max_frames is not None and self.frames >= self.max_frames
                ):
                    return
                if self.speed > 0:
                    wait = started + t / self.speed - time.monotonic()
                    await asyncio.sleep(max(wait, 0.0))
                else:
                    await asyncio.sleep(0)
                self.frames += 1
                yield time.time(), orjson.dumps(frame)
        finally:
            self._open = False

    async def close(self) -> None:
        self._closing = True
