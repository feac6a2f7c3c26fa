"""Watchlist test data: a small payment from real block 277647 (tests/fixtures/blocks, see
NOTICE.md there for provenance), and helpers that record events the way the ingest task does."""

from __future__ import annotations

import bz2
import json

import pytest

from alerts.watchlists import EntryInput, add_entries, build_entry
from detection.domain.esplora import whale_tx_from_esplora
from detection.models import WhaleEvent
from detection.recording import record_event
from tests.alerts.conftest import allow_loopback, receiver, smtp_server  # noqa: F401 - fixtures
from tests.records.helpers import FIXTURES, event, load_esplora, projection

BLOCK_277647_HASH = "0000000000000000054a714e580b16c583701712ab91060e92dbde6eb1e052a8"
# 0.54621816 BTC in all (below the 100 BTC floor); 0.04621816 BTC of it to 1P33wMq..., an address used nowhere else in the
# block; eight inputs, all from 1Ccwrk...
SMALL_TXID = "54d3c39b4726ea0eb8e8ccbd9323d329319126b29adab03e475805e069d96d98"
SMALL_RECIPIENT = "1P33wMqVqwFVX84H8E2yGGFzxLniFS1z8F"
SMALL_SENDER = "1CcwRkiTYJywMZfLMQewph8qiP76pg1eiv"


@pytest.fixture(scope="session")
def block_277647_txs() -> dict[str, dict]:
    with bz2.open(FIXTURES / "blocks" / "block_277647.esplora_txs.json.bz2") as handle:
        return {tx["txid"]: tx for tx in json.load(handle)}


@pytest.fixture(scope="session")
def whales():
    return load_esplora("whales_block_277647.esplora_txs.json")


@pytest.fixture
def small_tx(block_277647_txs):
    return whale_tx_from_esplora(block_277647_txs[SMALL_TXID])


def record(kind: str, tx, *, seq: int = 0, **extra) -> WhaleEvent:
    payload = event(kind, tx, seq=seq, projection=projection(tip=277646), **extra)
    result = record_event(payload)
    assert result.created, result.reason
    return WhaleEvent.everything.get(pk=result.event_id)


def confirm(tx, seq: int = 1) -> WhaleEvent:
    return record(
        "confirmed",
        tx,
        seq=seq,
        block={"height": 277647, "hash": BLOCK_277647_HASH, "time": 1388367102},
    )


def watch(owner, value: str, kind: str = "address", **fields):
    return add_entries(owner, [build_entry(owner, EntryInput(kind=kind, value=value, **fields))])[0]
