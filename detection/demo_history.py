"""A week of demo history, so `make demo` opens on a feed, stats and alerts that have content.

The whales take their shapes (input and output counts, weight) from the real mainnet whales in
detection/fixtures (provenance in detection/fixtures/NOTICE.md); values, fee rates, addresses and
txids are fresh and deterministic for a seed. Every whale goes through
detection.recording.record_event, the path live events take, so rows, predictions and rollups
are exactly what the ingest would have written. Times run over the 7 days before `now`, one block
every 10 minutes, and the last block is the height the demo recording starts from, so the live
replay continues the same chain of heights.

Every flow class appears, with replacements (fee bumps), drops, one reorg, whales seen only in
their block and scored predictions. The demo labels are "Demo Exchange A" to "Demo Exchange D" and "Demo Fund", under
the label source DEMO_LABEL_SOURCE, so they are easy to tell from real ones (and to delete).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from django.db import transaction

from detection.domain.addresses import encode_segwit_address
from detection.domain.esplora import whale_tx_from_esplora
from detection.ingest.sources.replay import read_recording
from detection.models import AddressLabel, Block, Prediction, WhaleTransaction
from detection.recording import record_event
from detection.stats import rebuild_rollups

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TEMPLATE_FILES = (
    "whales_block_277647.esplora_txs.json",
    "whales_block_702861.esplora_txs_no_prevouts.json",
)
DEMO_LABEL_SOURCE = "demo"
EXCHANGES = ("Demo Exchange A", "Demo Exchange B", "Demo Exchange C", "Demo Exchange D")
FUND = "Demo Fund"
BLOCK_INTERVAL = timedelta(minutes=10)
DAYS = 7
DEMO_RECORDING = FIXTURES / "demo.jsonl.gz"
RECENT_PENDING = 8  # whales seen in the last half hour, still waiting
FLOWS = ("exchange_inflow", "exchange_outflow", "inter_exchange", "exchange_internal", "unknown")


@dataclass
class DemoSummary:
    whales: int
    events: int
    blocks: int
    tip_height: int


def replay_parent(path: Path = DEMO_RECORDING) -> tuple[int, str]:
    """(height, hash) of the block the demo recording's first block builds on: the history's
    tip, so the live replay continues the same chain."""
    for _t, raw in read_recording(path):
        block = orjson.loads(raw).get("block") if raw.startswith(b"{") else None
        if isinstance(block, dict) and block.get("previousblockhash"):
            return int(block["height"]) - 1, str(block["previousblockhash"])
    raise ValueError(f"{path}: no block frame to continue from")


def replay_prices(path: Path = DEMO_RECORDING) -> dict[str, str]:
    """The fiat prices of the demo recording's first ``conversions`` frame, so that the history
    and the live replay value bitcoin alike."""
    for _t, raw in read_recording(path):
        message = orjson.loads(raw) if raw.startswith(b"{") else {}
        conversions = message.get("conversions") if isinstance(message, dict) else None
        if isinstance(conversions, dict):
            return {
                code: str(value)
                for code, value in conversions.items()
                if code != "time" and isinstance(value, int | float)
            }
    raise ValueError(f"{path}: no conversions frame to take prices from")


def templates() -> list[dict[str, Any]]:
    shapes = []
    for name in TEMPLATE_FILES:
        shapes.extend(json.loads((FIXTURES / name).read_text()))
    return shapes


class _Builder:
    def __init__(self, seed: int, now: datetime, whales: int):
        self.rng = random.Random(seed)
        self.seed = seed
        self.now = now.replace(microsecond=0)
        self.count = whales
        self.tip_height, self.tip_hash = replay_parent()
        self.base_prices = replay_prices()
        self.blocks_in_week = int(timedelta(days=DAYS) / BLOCK_INTERVAL)
        self.shapes = templates()
        self.events = 0
        self.blocks: dict[int, dict[str, Any]] = {}
        self.orphans: list[str] = []
        self.labels: dict[str, tuple[str, str]] = {}  # address -> (entity, kind)
        self.programs: dict[str, str] = {}  # address -> witness program, hex
        self.entity_addresses = {name: [self._address() for _ in range(6)] for name in EXCHANGES}
        self.entity_addresses[FUND] = [self._address() for _ in range(4)]
        for name, addresses in self.entity_addresses.items():
            kind = "custodian" if name == FUND else "exchange"
            for address in addresses:
                self.labels[address] = (name, kind)

    # --- identifiers ---------------------------------------------------------------------------

    def _hash(self, *parts: object) -> str:
        text = ":".join(str(p) for p in ("whale-watch-demo", self.seed, *parts))
        return hashlib.sha256(text.encode()).hexdigest()

    def _address(self) -> str:
        program = self.rng.getrandbits(160).to_bytes(20)
        address = encode_segwit_address(0, program)
        self.programs[address] = program.hex()
        return address

    def height_at(self, when: datetime) -> int:
        return self.tip_height - int((self.now - when) / BLOCK_INTERVAL)

    def time_of(self, height: int) -> datetime:
        return self.now - (self.tip_height - height) * BLOCK_INTERVAL

    def block(self, height: int, *, orphan: bool = False) -> dict[str, Any]:
        if orphan:
            self.orphans.append(self._hash("orphan", height))
            return {"height": height, "hash": self.orphans[-1], "time": None}
        if height not in self.blocks:
            self.blocks[height] = {
                "height": height,
                "hash": self.tip_hash if height == self.tip_height else self._hash("block", height),
                "time": self.time_of(height).timestamp(),
            }
        return self.blocks[height]

    # --- transactions --------------------------------------------------------------------------

    def _side(self, flow: str, index: int) -> tuple[list[str], list[str]]:
        """(input addresses, recipient addresses) for a flow class."""
        a, b = EXCHANGES[index % 4], EXCHANGES[(index + 1) % 4]
        pick = self.rng.choice
        fresh = self._address
        if flow == "exchange_inflow":
            sender = [pick(self.entity_addresses[FUND])] if index % 3 == 0 else [fresh()]
            return sender, [pick(self.entity_addresses[a])]
        if flow == "exchange_outflow":
            return [pick(self.entity_addresses[a])], [fresh()]
        if flow == "inter_exchange":
            return [pick(self.entity_addresses[a])], [pick(self.entity_addresses[b])]
        if flow == "exchange_internal":
            return [pick(self.entity_addresses[a])], [pick(self.entity_addresses[a])]
        return [fresh()], [fresh()]

    def tx(self, index: int, flow: str, fee_rate: float, variant: int = 0) -> dict[str, Any]:
        shape = self.shapes[index % len(self.shapes)]
        senders, recipients = self._side(flow, index)
        n_in = max(1, min(len(shape["vin"]), 8))
        n_out = max(2, min(len(shape["vout"]), 6))
        value = int(self.rng.lognormvariate(5.3, 0.8) * 100_000_000)  # median ~200 BTC
        value = max(value, 100 * 100_000_000)
        weight = (
            int(shape["weight"] * n_in / len(shape["vin"]))
            if len(shape["vin"]) > 8
            else int(shape["weight"])
        )
        vsize = -(-weight // 4)
        fee = round(fee_rate * vsize)
        inputs, remaining = [], value + fee
        for i in range(n_in):
            part = remaining if i == n_in - 1 else remaining // (n_in - i)
            remaining -= part
            address = senders[i % len(senders)]
            inputs.append(
                {
                    "txid": self._hash("prev", index, i),
                    "vout": i,
                    "prevout": self._output(address, part),
                    "sequence": 0xFFFFFFFD,
                }
            )
        change = value // 50 * (n_out - 1)
        outputs = [self._output(recipients[0], value - change)]
        for o in range(1, n_out):
            share = change // (n_out - 1)
            # Change goes back to the sender; the rest of a batch to fresh addresses.
            outputs.append(self._output(senders[0] if o == 1 else self._address(), share))
        return {
            "txid": self._hash("tx", index, variant),
            "version": 2,
            "locktime": 0,
            "vin": inputs,
            "vout": outputs,
            "weight": weight,
            "vsize": vsize,
            "fee": fee,
            "status": {"confirmed": False},
        }

    def _output(self, address: str, value: int) -> dict[str, Any]:
        program = self.programs[address]
        return {
            "scriptpubkey": "0014" + program,
            "scriptpubkey_asm": "OP_0 OP_PUSHBYTES_20 " + program,
            "scriptpubkey_type": "v0_p2wpkh",
            "scriptpubkey_address": address,
            "value": value,
        }

    # --- the week ------------------------------------------------------------------------------

    def payload(self, kind: str, tx: dict[str, Any], at: datetime, **extra) -> dict[str, Any]:
        self.events += 1
        payload = {
            "event_id": str(uuid.UUID(self._hash("event", self.events)[:32])),
            "kind": kind,
            "txid": tx["txid"],
            "chain_txid": extra.pop("chain_txid", tx["txid"]),
            "seq": extra.pop("seq", 0),
            "observed_at": at.timestamp(),
            "source": "demo history",
            "tx": whale_tx_from_esplora(tx).to_json(),
            "prices": self.prices_at(at),
        }
        payload.update(extra)
        return payload

    def prices_at(self, at: datetime) -> dict[str, list[Any]]:
        """The source's fiat prices as the ingest carries them ({code: [price, received_at]}):
        a deterministic drift of a few per cent over the week, so fiat values differ by day, that
        ends at the replay's own prices now."""
        drift = 1 + 0.03 * math.sin((at - self.now).total_seconds() / 86_400)
        return {
            code: [
                str((Decimal(base) * Decimal(str(round(drift, 5)))).quantize(Decimal(1))),
                at.timestamp(),
            ]
            for code, base in self.base_prices.items()
        }

    def projection(self, at: datetime, fee_rate: float, market: float) -> dict[str, Any]:
        ratio = fee_rate / market
        block = 0 if ratio >= 1 else 1 if ratio >= 0.7 else 3 if ratio >= 0.4 else 7
        return {
            "projected_block": block,
            "fee_percentile": min(1.0, ratio / 2),
            "tip_height": self.height_at(at),
            "next_block_median_fee_rate": market,
            "next_block_floor_fee_rate": round(market * 0.6, 3),
            "mempool_median_fee_rate": round(market * 0.8, 3),
            "seconds_since_last_block": (at - self.time_of(self.height_at(at))).total_seconds(),
            "made_at": at.timestamp(),
            "basis": "demo",
        }

    def script(self) -> list[dict[str, Any]]:
        """Every event of the week, in time order."""
        events: list[tuple[datetime, int, dict[str, Any]]] = []
        week = timedelta(days=DAYS)
        for index in range(self.count):
            flow = FLOWS[index % len(FLOWS)]
            seen_at = self.now - week + week * (index + self.rng.random()) / (self.count + 1)
            if index >= self.count - RECENT_PENDING:  # the feed's top: pending right now
                seen_at = self.now - timedelta(minutes=4 * (self.count - index))
            seen_at = seen_at.replace(microsecond=0)
            # A market that breathes over the day: 4 to 40 sat/vB at the next block.
            market = 4 + 36 * self.rng.random() ** 2
            fee_rate = round(market * self.rng.choice((0.0, 0.3, 0.6, 0.9, 1.2, 1.5, 2.5)), 1)
            if fee_rate == 0 and index % 7:
                fee_rate = round(market * 1.1, 1)  # zero-fee whales are rare
            tx = self.tx(index, flow, fee_rate)
            proj = self.projection(seen_at, fee_rate, market)
            age = self.now - seen_at
            fate = index % 20
            if fate == 13 and age >= timedelta(minutes=50):
                # Seen only in its block (the mempool never showed it): no seen event at all.
                height = self.height_at(seen_at) + 1
                mined_at = self.time_of(height)
                block = self.block(height)
                events.append((mined_at, 8, self.payload("confirmed", tx, mined_at, block=block)))
                continue
            events.append((seen_at, 0, self.payload("seen", tx, seen_at, projection=proj)))
            if age < timedelta(minutes=50):
                continue  # still pending: the feed's top
            if fate == 3 and fee_rate > 0:  # fee bump: the replacement confirms
                bumped_at = seen_at + timedelta(minutes=5)
                new = self.tx(index, flow, round(fee_rate * 1.6 + 2, 1), variant=1)
                new["vin"] = tx["vin"]
                seq = 1
                events.append(
                    (
                        bumped_at,
                        seq,
                        self.payload(
                            "replaced",
                            new,
                            bumped_at,
                            chain_txid=tx["txid"],
                            replaced_txid=tx["txid"],
                            seq=seq,
                            projection=self.projection(bumped_at, fee_rate * 1.6 + 2, market),
                        ),
                    )
                )
                tx, seen_at = new, bumped_at
            if fate == 11:  # dropped from the mempool after a day, never mined
                dropped_at = seen_at + min(age - timedelta(minutes=1), timedelta(hours=26))
                events.append((dropped_at, 5, self.payload("dropped", tx, dropped_at, seq=5)))
                continue
            waited = proj["projected_block"] + 1 + (1 if fate in (5, 9) else 0)
            if fee_rate == 0:
                waited += 30
            height = min(self.height_at(seen_at) + waited, self.tip_height)
            mined_at = self.time_of(height)
            if mined_at <= seen_at:
                mined_at = seen_at + timedelta(seconds=30)
            chain = {"chain_txid": events[-1][2]["chain_txid"]}
            if fate == 17 and index == 17:  # the reorg: mined, orphaned, mined again one later
                orphan = self.block(height, orphan=True)
                events.append(
                    (
                        mined_at,
                        6,
                        self.payload("confirmed", tx, mined_at, seq=6, block=orphan, **chain),
                    )
                )
                back = mined_at + timedelta(minutes=2)
                events.append(
                    (back, 7, self.payload("reorged", tx, back, seq=7, block=orphan, **chain))
                )
                height = min(height + 1, self.tip_height)
                mined_at = max(self.time_of(height), back + timedelta(seconds=30))
            events.append(
                (
                    mined_at,
                    8,
                    self.payload(
                        "confirmed", tx, mined_at, seq=8, block=self.block(height), **chain
                    ),
                )
            )
        events.sort(key=lambda e: (e[0], e[1]))
        return [payload for _, _, payload in events]


@transaction.atomic
def load(*, seed: int = 19, now: datetime, whales: int = 240) -> DemoSummary:
    """Replace the demo history (rows from earlier loads) with a fresh week ending at `now`."""
    builder = _Builder(seed, now, whales)
    WhaleTransaction.objects.filter(source="demo history").delete()
    AddressLabel.objects.filter(source=DEMO_LABEL_SOURCE).delete()
    AddressLabel.objects.bulk_create(
        AddressLabel(address=address, entity=entity, kind=kind, source=DEMO_LABEL_SOURCE)
        for address, (entity, kind) in builder.labels.items()
    )
    script = builder.script()
    builder.block(builder.tip_height)
    hashes = [b["hash"] for b in builder.blocks.values()]
    Block.objects.filter(hash__in=hashes + builder.orphans).delete()
    # A week of history is not news: nobody is pushed it or alerted about it.
    for payload in script:
        record_event(payload, announce=False)
    # The tip the live replay builds on, even when no demo whale was mined in it.
    tip = builder.blocks[builder.tip_height]
    Block.objects.get_or_create(
        hash=tip["hash"],
        defaults={
            "height": tip["height"],
            "time": datetime.fromtimestamp(tip["time"], tz=now.tzinfo),
        },
    )
    # Predictions resolve "now" when recorded; a week of history resolved when its block came.
    for height, block in builder.blocks.items():
        Prediction.objects.filter(resolved_height=height, whale__source="demo history").update(
            resolved_at=datetime.fromtimestamp(block["time"], tz=now.tzinfo)
        )
    rebuild_rollups()
    return DemoSummary(
        whales=WhaleTransaction.objects.filter(source="demo history").count(),
        events=len(script),
        blocks=len(builder.blocks),
        tip_height=builder.tip_height,
    )
