"""Build ingest event payloads (the detection.ingest.lifecycle contract) for record tests."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from detection.domain.esplora import whale_tx_from_esplora
from detection.txshape import WhaleTx

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def load_esplora(name: str) -> dict[str, WhaleTx]:
    with open(FIXTURES / "blocks" / name, encoding="utf-8") as handle:
        return {tx["txid"]: whale_tx_from_esplora(tx) for tx in json.load(handle)}


def event(kind: str, tx: WhaleTx, *, seq: int = 0, at: float = 1_700_000_000.0, **extra) -> dict:
    payload = {
        "event_id": str(uuid.uuid4()),
        "kind": kind,
        "txid": tx.txid,
        "chain_txid": extra.pop("chain_txid", tx.txid),
        "seq": seq,
        "observed_at": at,
        "frame_received_at": at - 0.01,
        "source": "test",
        "tx": tx.to_json(),
    }
    payload.update(extra)
    return payload


def projection(*, tip: int, block: int | None = 0, next_rate: float = 15.0, **extra) -> dict:
    return {
        "projected_block": block,
        "fee_percentile": extra.pop("fee_percentile", 0.5),
        "tip_height": tip,
        "next_block_median_fee_rate": next_rate,
        "mempool_median_fee_rate": extra.pop("median_fee_rate", 12.0),
        "made_at": extra.pop("made_at", 1_700_000_000.0),
        "basis": extra.pop("basis", "local"),
        **extra,
    }
