"""End to end: the real ingest command, Celery worker and PostgreSQL, on block 277647's small
payment watched by one user: seen and confirmed alerts for that user, nobody else's."""

from __future__ import annotations

from django.core.management import call_command

from alerts.models import Delivery
from alerts.watchlists import WatchHit
from detection.models import WhaleEvent, WhaleTransaction
from tests.alerts.conftest import make_subscription
from tests.ingest.ingest_support import as_unconfirmed, mempool_frame
from tests.support.processes import wait_until, write_recording
from tests.watchlist.conftest import BLOCK_277647_HASH, SMALL_RECIPIENT, SMALL_TXID, watch


def test_replayed_small_payment_alerts_its_watcher_only(
    tmp_path, alice, bob, block_277647_txs, celery_worker_process
):
    watch(alice, SMALL_RECIPIENT, note="cold storage")
    make_subscription(bob, min_btc=100)
    small = as_unconfirmed(block_277647_txs[SMALL_TXID])
    recording = write_recording(
        tmp_path / "small.jsonl",
        [
            (0.0, mempool_frame(1, added=[small])),
            (1.0, mempool_frame(2, mined=[SMALL_TXID])),
            (1.1, {"block": {"id": BLOCK_277647_HASH, "height": 277647, "timestamp": 1388367102}}),
        ],
    )
    call_command("ingest_mempool", source=f"replay:{recording}?speed=0", max_seconds=5.0)
    wait_until(lambda: Delivery.objects.filter(owner=alice).count() == 2)
    row = WhaleTransaction.everything.get(txid=SMALL_TXID)
    assert row.watch_only and row.status == "confirmed"
    assert sorted(WhaleEvent.everything.filter(whale=row).values_list("kind", flat=True)) == [
        "confirmed",
        "seen",
    ]
    assert sorted(d.event.kind for d in Delivery.objects.filter(owner=alice)) == [
        "confirmed",
        "seen",
    ]
    assert WatchHit.objects.filter(entry__owner=alice).count() == 2
    assert not Delivery.objects.filter(owner=bob).exists()
    assert not WhaleTransaction.objects.exists()  # nothing public
