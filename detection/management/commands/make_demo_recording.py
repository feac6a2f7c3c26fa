"""Build the offline demo recording: synthetic traffic with real mainnet whales mined in it."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand

from detection.ingest.sources.replay import Recorder
from detection.ingest.sources.synthetic import SyntheticMempool

FIXTURES = Path(__file__).resolve().parent.parent.parent / "fixtures"
REAL_WHALE_FILES = (
    "whales_block_277647.esplora_txs.json",
    "whales_block_702861.esplora_txs_no_prevouts.json",
)


def real_whales() -> list[dict]:
    whales = []
    for name in REAL_WHALE_FILES:
        for tx in json.loads((FIXTURES / name).read_text()):
            tx = dict(tx, status={"confirmed": False})
            whales.append(tx)
    return whales


class Command(BaseCommand):
    help = "Write detection/fixtures/demo.jsonl.gz, the recording `make demo` replays."

    def add_arguments(self, parser):
        parser.add_argument("--output", default=str(FIXTURES / "demo.jsonl.gz"))
        parser.add_argument("--seconds", type=int, default=900, help="simulated duration")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, output, seconds, seed, **options):
        generator = SyntheticMempool(
            seed=seed, tx_per_s=4.0, whale_ratio=0.004, block_interval=120.0
        )
        pending_real = real_whales()
        # One real whale every 90 s from t = 15 s; each is mined in the first block 30 s later.
        inject_at = {15 + 90 * n: tx for n, tx in enumerate(pending_real)}
        waiting: list[tuple[float, str]] = []
        frames = 0
        with Recorder(output) as recorder:
            for t, frame in generator.frames():
                if t > seconds:
                    break
                delta = frame.get("mempool-transactions")
                if delta is not None and "block" in frame:
                    ready = [txid for at, txid in waiting if at + 30 <= t]
                    delta["mined"].extend(ready)
                    waiting = [(at, txid) for at, txid in waiting if txid not in ready]
                elif delta is not None and int(t) in inject_at:
                    tx = inject_at.pop(int(t))
                    delta["added"].append(tx)
                    waiting.append((t, tx["txid"]))
                recorder.write(t, json.dumps(frame, separators=(",", ":")).encode())
                frames += 1
        self.stdout.write(
            f"wrote {output}: {frames} frames over {seconds} s, {generator.counts['txs']} "
            f"synthetic txs, {len(pending_real) - len(inject_at)} real whales "
            f"({len(waiting)} still pending at the end)"
        )
