"""Faults with real processes: the broker goes away under ingest, a worker dies mid-task."""

import signal
import time

import pytest
from django.db import connection, transaction

from detection.models import EventKind, WhaleEvent, WhaleTransaction
from tests.ingest.ingest_support import as_unconfirmed, mempool_frame, whales_277647
from tests.support.processes import (
    RedisServer,
    kill,
    start_ingest,
    start_worker,
    subprocess_env,
    wait_until,
    write_recording,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

HASH_277647 = "0000000000000000054a714e580b16c583701712ab91060e92dbde6eb1e052a8"


def test_events_are_buffered_while_the_broker_is_down(tmp_path):
    broker = RedisServer(tmp_path)
    broker.start()
    env = subprocess_env(CELERY_BROKER_URL=broker.url)
    first, second, third = (as_unconfirmed(t) for t in whales_277647())
    recording = write_recording(
        tmp_path / "outage.jsonl",
        [
            (0.0, mempool_frame(1, added=[first])),
            (6.0, mempool_frame(2, added=[second])),
            (7.0, mempool_frame(3, added=[third])),
            (8.0, mempool_frame(4, mined=[first["txid"], second["txid"], third["txid"]])),
            (8.1, {"block": {"id": HASH_277647, "height": 277647, "timestamp": 1388400000}}),
        ],
    )
    worker = start_worker(env, tmp_path / "worker.log", name="outage")
    ingest = start_ingest(
        env, tmp_path / "ingest.log", f"replay:{recording}?speed=1", "--max-seconds", "60"
    )
    try:
        wait_until(lambda: WhaleTransaction.objects.filter(txid=first["txid"]).exists(), 30)
        broker.stop()  # the next two whales and the block arrive while it is down
        time.sleep(10)
        assert not WhaleTransaction.objects.filter(txid=second["txid"]).exists()
        broker.start()
        wait_until(
            lambda: WhaleEvent.objects.filter(kind=EventKind.CONFIRMED).count() == 3, timeout=90
        )
    finally:
        kill(ingest, signal.SIGINT)
        kill(worker, signal.SIGTERM)
        broker.stop()
    log = (tmp_path / "ingest.log").read_text()
    assert "0 unflushed" in log, log
    kinds = sorted(WhaleEvent.objects.values_list("kind", flat=True))
    assert kinds == ["confirmed"] * 3 + ["seen"] * 3  # nothing lost, nothing twice


def _worker_waiting_on_event_insert() -> bool:
    with connection.cursor() as cursor:
        # Inside a transaction PostgreSQL serves a cached activity snapshot; drop it each poll.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE 'INSERT INTO \"detection_whaleevent\"%%'"
        )
        return cursor.fetchone()[0] > 0


def test_worker_killed_mid_task_leaves_one_row_per_event(tmp_path):
    from detection.tasks import record_whale_event
    from tests.records.helpers import event, load_esplora, projection

    tx = load_esplora("whales_block_277647.esplora_txs.json")[
        "d385205568e5420bc73b190ede001678730d42744d0716d2c5c2b6467cf73082"
    ]
    payload = event("seen", tx, projection=projection(tip=277646))
    env = subprocess_env(CELERY_VISIBILITY_TIMEOUT="5")
    first_worker = start_worker(env, tmp_path / "worker1.log", name="doomed")
    try:
        with transaction.atomic():
            # Readers pass, writers wait: the task gets inside its transaction, writes the whale
            # row and then blocks on the event insert, where the worker is killed.
            with connection.cursor() as cursor:
                cursor.execute("LOCK TABLE detection_whaleevent IN EXCLUSIVE MODE")
            record_whale_event.delay(payload)
            wait_until(_worker_waiting_on_event_insert, timeout=30)
            kill(first_worker)
    finally:
        kill(first_worker)
    assert WhaleTransaction.objects.count() == 0  # the dead worker's transaction rolled back

    second_worker = start_worker(env, tmp_path / "worker2.log", name="heir")
    try:
        wait_until(lambda: WhaleEvent.objects.exists(), timeout=60)
        time.sleep(6)  # past another visibility timeout: a second redelivery would show now
    finally:
        kill(second_worker, signal.SIGTERM)
    assert WhaleEvent.objects.count() == 1
    assert WhaleTransaction.objects.count() == 1
    assert WhaleEvent.objects.get().uid.hex == payload["event_id"].replace("-", "")
