"""A whale only ever in a block: scanned from a real local mempool server, recorded through the
same path as every event, alerted, and counted by the coverage figure (issue 13)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.fanout import fan_out
from alerts.models import Delivery, Subscription, sats_from_btc
from detection import stats
from detection.block_scans import last_scanned_block, save_scanned_block
from detection.ingest.blockscan import BlockScanner
from detection.ingest.protocol import BlockInfo
from detection.ingest.runner import IngestRunner
from detection.ingest.sources.live import LiveSource
from detection.management.commands.ingest_mempool import pending_whales_from_database
from detection.models import Block, WhaleEvent, WhaleStatus, WhaleTransaction
from detection.recording import record_event
from tests.ingest.ingest_support import (
    BLOCK_277647,
    Collector,
    MempoolServer,
    RestBlock,
    as_unconfirmed,
    esplora_txs_277647,
    make_runner,
    mempool_frame,
    raw_block_277647,
    whales_277647,
)
from tests.records.helpers import event, load_esplora

# Transactional: the position is saved and read in worker threads, as the ingest does.
pytestmark = pytest.mark.django_db(transaction=True)

PREVIOUS_277647 = "0000000000000000c86826ab2fbe4639ec413004955a36e77c2267988579e653"
CONSOLIDATION_100 = "d385205568e5420bc73b190ede001678730d42744d0716d2c5c2b6467cf73082"


async def ingest_block_277647() -> tuple[list[dict], list[BlockInfo]]:
    server = MempoolServer()
    await server.start()
    block = RestBlock(raw_block_277647(), 277647, esplora_txs_277647())
    server.rest_blocks[block.hash] = block
    server.rest_txs.update({tx["txid"]: tx for tx in whales_277647()})
    try:
        source = LiveSource(server.url, use_env_proxy=False, base_delay=0.05)
        sink = Collector()
        scanned: list[BlockInfo] = []
        runner = IngestRunner(
            source,
            sink,
            rss_reader=None,
            block_scanner=BlockScanner(source.rest, 100 * 100_000_000),
            on_block_scanned=scanned.append,
        )
        task = asyncio.create_task(runner.run())
        await server.wait_messages(0, 2)
        await server.send({"blocks": [{"id": PREVIOUS_277647, "height": 277646}]})
        seen = as_unconfirmed(next(t for t in whales_277647() if t["txid"] == CONSOLIDATION_100))
        await server.send(mempool_frame(1, added=[seen]))
        await sink.wait(1)
        # mempool.space lists in `mined` the txs of the block it held: only the one we saw.
        frame = mempool_frame(2, mined=[CONSOLIDATION_100], removed=[])
        await server.send({"block": block.ws_block(), **frame})
        await sink.wait(4)
        runner.stop()
        await task
        return sink.events, scanned
    finally:
        await server.stop()


def in_thread(function, *args):
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args).result()


def test_block_only_whales_are_recorded_unseen_alerted_and_lower_coverage(alice, bob):
    Subscription.objects.create(owner=alice, name="all", min_sats=sats_from_btc(100), email=True)
    Subscription.objects.create(
        owner=bob,
        name="seen first only",
        min_sats=sats_from_btc(100),
        email=True,
        notify_unseen_confirmed=False,
    )
    events, scanned = asyncio.run(ingest_block_277647())
    assert [e["kind"] for e in events] == ["seen", "confirmed", "confirmed", "confirmed"]
    for payload in events:
        result = record_event(payload)
        assert result.created, result.reason
    assert record_event(events[-1]).created is False  # a redelivery records nothing twice
    rows = {w.txid: w for w in WhaleTransaction.objects.all()}
    assert len(rows) == 3
    for txid, whale in rows.items():
        assert whale.status == WhaleStatus.CONFIRMED
        assert whale.confirmed_height == 277647
        assert whale.seen_in_mempool is (txid == CONSOLIDATION_100)
        assert whale.has_prevouts  # fetched from /api/tx: input side known
    assert rows["5143ba5524d21b646de5cd5a1ab6ee7b7823a59c87a347d3b5339e9f977e7dcd"].value == (
        92_700_000_000
    )
    assert stats.coverage() == {"mined": 3, "seen_first": 1, "coverage": pytest.approx(1 / 3)}
    for row in WhaleEvent.objects.filter(kind="confirmed"):
        fan_out(row.pk)  # done at commit already: a no-op then (one fan-out per event)
    alerted = set(Delivery.objects.filter(owner=alice).values_list("event__whale__txid", flat=True))
    assert alerted == set(rows)
    # Bob does not want whales confirmed without being seen in the mempool.
    bob_alerted = Delivery.objects.filter(owner=bob).values_list(
        "event__whale__txid", "event__kind"
    )
    assert sorted(bob_alerted) == [(CONSOLIDATION_100, "confirmed"), (CONSOLIDATION_100, "seen")]
    # The position a restarted ingest continues from.
    for block in scanned:
        in_thread(save_scanned_block, block)
    assert in_thread(last_scanned_block) == (277647, BLOCK_277647)
    assert Block.objects.get(hash=BLOCK_277647).scanned_at is not None


def test_whales_pending_too_long_are_closed_as_dropped(settings):
    settings.WHALE_PENDING_EXPIRY_DAYS = 14
    whales = load_esplora("whales_block_277647.esplora_txs.json")
    old, recent = list(whales)[:2]
    for txid in (old, recent):
        assert record_event(event("seen", whales[txid], seq=1)).created
    WhaleTransaction.objects.filter(txid=old).update(updated_at=timezone.now() - timedelta(days=15))
    pending, expired = pending_whales_from_database("test")
    assert [w.txid for w in pending] == [recent] and [w.txid for w in expired] == [old]
    first = whales[recent].inputs[0]
    assert pending[0].first_input == (first.prev_txid, first.prev_vout)
    assert pending[0].value == whales[recent].value
    runner = make_runner()
    assert runner.expire_pending(expired) == 1
    [dropped] = list(runner._buffer)
    assert (dropped["kind"], dropped["seq"], dropped["reasons"]) == ("dropped", 2, ["expired"])
    assert record_event(dropped).created
    assert WhaleTransaction.objects.get(txid=old).status == WhaleStatus.DROPPED
    assert WhaleTransaction.objects.get(txid=recent).status == WhaleStatus.PENDING


def test_dropped_whale_seen_again_then_mined_is_one_chain():
    whales = load_esplora("whales_block_277647.esplora_txs.json")
    tx = whales[CONSOLIDATION_100]
    at = 1_700_000_000.0
    assert record_event(event("seen", tx, seq=1, at=at)).created
    assert record_event(event("dropped", tx, seq=2, at=at + 60, reasons=["removed"])).created
    assert WhaleTransaction.objects.get().status == WhaleStatus.DROPPED
    assert record_event(event("seen", tx, seq=3, at=at + 600)).created
    assert WhaleTransaction.objects.get().status == WhaleStatus.PENDING
    block = {"height": 277647, "hash": BLOCK_277647, "time": 1388367102}
    assert record_event(event("confirmed", tx, seq=4, at=at + 900, block=block)).created
    whale = WhaleTransaction.objects.get()
    assert (whale.status, whale.confirmed_height, whale.seen_in_mempool) == (
        WhaleStatus.CONFIRMED,
        277647,
        True,
    )
    assert list(whale.events.order_by("sequence").values_list("kind", flat=True)) == [
        "seen",
        "dropped",
        "seen",
        "confirmed",
    ]


def test_a_block_scanned_again_records_no_second_confirmation():
    whales = load_esplora("whales_block_277647.esplora_txs.json")
    tx = whales[CONSOLIDATION_100]
    block = {"height": 277647, "hash": BLOCK_277647, "time": 1388367102}
    assert record_event(event("seen", tx, seq=1)).created
    assert record_event(event("confirmed", tx, seq=2, block=block)).created
    # After a restart the block is scanned again; the tracker no longer knows the whale.
    again = record_event(event("confirmed", tx, seq=1, block=block))
    assert (again.created, again.reason) == (False, "already confirmed in that block")
    assert WhaleEvent.objects.filter(kind="confirmed").count() == 1
