"""Graceful shutdown with real processes.

- The ingest, stopped with SIGINT mid-stream (what systemd sends, KillSignal=SIGINT), hands over
  every event it made before stopping: each is in the database exactly once, its log says
  "0 unflushed" and it writes its position to WHALE_VAR_DIR/ingest-state.json.
- A Celery worker stopped with SIGTERM (systemd's default) finishes the task it is running.
"""

import json
import secrets
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from django.db import connection, transaction
from prometheus_client.parser import text_string_to_metric_families

from detection.models import EventKind, WhaleEvent
from tests.ingest.ingest_support import as_unconfirmed, mempool_frame, whales_277647
from tests.support.processes import (
    ROOT,
    free_port,
    kill,
    start_ingest,
    start_worker,
    subprocess_env,
    wait_until,
    write_recording,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WHALES = 40
SECONDS_BETWEEN_WHALES = 0.25


def whale_stream() -> list[dict]:
    """Distinct whales (real transactions under fresh txids), one per frame."""
    templates = whales_277647()
    whales = []
    for index in range(WHALES):
        tx = as_unconfirmed(templates[index % len(templates)])
        tx["txid"] = secrets.token_hex(32)
        whales.append(tx)
    return whales


def ingest_families(port: int) -> set[str] | None:
    """The ingest's metric families once its stats are in, else None."""
    text = urllib.request.urlopen(  # noqa: S310 - our own loopback port
        f"http://127.0.0.1:{port}/metrics", timeout=5
    ).read()
    families = {family.name for family in text_string_to_metric_families(text.decode())}
    return families if "whalewatch_ingest_queue_depth" in families else None


def test_sigint_mid_stream_loses_no_whale_event(tmp_path):
    whales = whale_stream()
    recording = write_recording(
        tmp_path / "stream.jsonl",
        [
            (index * SECONDS_BETWEEN_WHALES, mempool_frame(index + 1, added=[tx]))
            for index, tx in enumerate(whales)
        ],
    )
    metrics_port = free_port()
    env = subprocess_env(
        WHALE_VAR_DIR=str(tmp_path / "var"), WHALE_INGEST_METRICS_PORT=str(metrics_port)
    )
    worker = start_worker(env, tmp_path / "worker.log", name="ops-shutdown")
    ingest = start_ingest(env, tmp_path / "ingest.log", f"replay:{recording}?speed=1")
    try:
        wait_until(lambda: WhaleEvent.objects.count() >= 8, timeout=60)
        # The figures appear with the first heartbeat (every 5 s).
        families = wait_until(lambda: ingest_families(metrics_port), timeout=15, interval=0.5)
        ingest.send_signal(signal.SIGINT)
        assert ingest.wait(timeout=30) == 0
    finally:
        kill(ingest)
    log = (tmp_path / "ingest.log").read_text()
    assert "0 unflushed" in log, log
    position = json.loads((tmp_path / "var" / "ingest-state.json").read_text())
    assert f"position saved to {tmp_path / 'var' / 'ingest-state.json'}" in log
    published = position["events_published"]
    assert position["events_unflushed"] == 0
    assert published == position["events_made"]
    assert 8 <= published < WHALES, "the stop was meant to come mid-stream"
    assert position["last_sequence"] == published  # one whale, one event per frame

    try:
        wait_until(lambda: WhaleEvent.objects.count() >= published, timeout=60)
        time.sleep(2)  # time for a duplicate to show up, if one were coming
    finally:
        kill(worker, signal.SIGTERM)
    recorded = list(WhaleEvent.objects.values_list("whale__txid", "kind"))
    assert len(recorded) == published
    assert {kind for _, kind in recorded} == {EventKind.SEEN}
    # The events handed over are exactly the first whales of the stream, each once.
    assert sorted(txid for txid, _ in recorded) == sorted(tx["txid"] for tx in whales[:published])

    assert {"whalewatch_ingest_frames_per_second", "whalewatch_ingest_rss_bytes"} <= families


def _worker_waiting_on_event_insert() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE 'INSERT INTO \"detection_whaleevent\"%%'"
        )
        return cursor.fetchone()[0] > 0


def test_sigterm_lets_the_worker_finish_its_task(tmp_path):
    """Celery's warm shutdown, with the prefork pool the systemd unit runs."""
    from detection.tasks import record_whale_event
    from tests.records.helpers import event, load_esplora, projection

    tx = next(iter(load_esplora("whales_block_277647.esplora_txs.json").values()))
    payload = event("seen", tx, projection=projection(tip=277646))
    env = subprocess_env()
    log_path = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "whaleproject", "worker", "--pool=prefork",
            "--concurrency=1", "--loglevel=INFO", "--without-gossip", "--without-mingle",
            "-n", "ops-warm@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        with transaction.atomic():
            # The task gets inside its transaction and waits on this lock: "mid-task".
            with connection.cursor() as cursor:
                cursor.execute("LOCK TABLE detection_whaleevent IN EXCLUSIVE MODE")
            record_whale_event.delay(payload)
            wait_until(_worker_waiting_on_event_insert, timeout=60)
            worker.send_signal(signal.SIGTERM)
            time.sleep(3)
            assert worker.poll() is None, "the worker left before its task was done"
        assert worker.wait(timeout=60) == 0
    finally:
        kill(worker)
    assert WhaleEvent.objects.filter(uid=payload["event_id"]).count() == 1
    log = log_path.read_text()
    assert "succeeded" in log, log
