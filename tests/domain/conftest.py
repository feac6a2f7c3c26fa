"""Fixtures for the pure domain tests: real mainnet whales converted from Esplora JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detection.domain.esplora import whale_tx_from_esplora
from detection.txshape import WhaleTx

BLOCKS_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "blocks"


def load_whales(name: str) -> dict[str, WhaleTx]:
    with open(BLOCKS_DIR / name, encoding="utf-8") as handle:
        return {tx["txid"]: whale_tx_from_esplora(tx) for tx in json.load(handle)}


@pytest.fixture(scope="session")
def whales_277647() -> dict[str, WhaleTx]:
    return load_whales("whales_block_277647.esplora_txs.json")


@pytest.fixture(scope="session")
def whales_702861() -> dict[str, WhaleTx]:
    return load_whales("whales_block_702861.esplora_txs_no_prevouts.json")
