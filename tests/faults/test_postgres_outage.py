"""PostgreSQL stops for a few seconds under a running ingest and worker, then comes back.

The ingest never talks to PostgreSQL (it hands events to the broker), so it keeps reading; the
worker's record task fails with OperationalError while the server is away and is retried with
backoff (detection.tasks). Nothing may be lost, and the unique constraints must keep a retry
after a half-finished commit from recording anything twice. The worker keeps connections for a
minute (DATABASE_CONN_MAX_AGE=60, the production default), so it also has to notice that the
connections it holds died with the server.

PostgreSQL here is a private cluster (tests/support/pgcluster.py) holding a copy of the test schema:
stopping the shared server would break everyone else's tests.
"""

from __future__ import annotations

import secrets
import signal
import time

import psycopg
import pytest

from tests.faults.support import clone_test_database
from tests.ingest.ingest_support import as_unconfirmed, mempool_frame, whales_277647
from tests.support.pgcluster import PgCluster
from tests.support.processes import (
    kill,
    start_ingest,
    start_worker,
    subprocess_env,
    wait_until,
    write_recording,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WHALES = 12
SPACING = 0.4
OUTAGE_S = 4.0
HASH_277647 = "0000000000000000054a714e580b16c583701712ab91060e92dbde6eb1e052a8"


def whale_stream() -> list[dict]:
    templates = whales_277647()
    whales = []
    for index in range(WHALES):
        tx = as_unconfirmed(templates[index % len(templates)])
        tx["txid"] = secrets.token_hex(32)
        whales.append(tx)
    return whales


def event_counts(url: str) -> dict[tuple[str, str], int]:
    """(txid, kind) -> rows; {} while the server is away."""
    try:
        with psycopg.connect(url, connect_timeout=2) as db:
            rows = db.execute(
                "SELECT w.txid, e.kind, count(*) FROM detection_whaleevent e "
                "JOIN detection_whaletransaction w ON w.id = e.whale_id GROUP BY 1, 2"
            ).fetchall()
    except psycopg.OperationalError:
        return {}
    return {(txid, kind): count for txid, kind, count in rows}


def test_ingest_and_worker_lose_nothing_while_postgresql_is_down(tmp_path):
    whales = whale_stream()
    end = WHALES * SPACING
    recording = write_recording(
        tmp_path / "stream.jsonl",
        [(i * SPACING, mempool_frame(i + 1, added=[tx])) for i, tx in enumerate(whales)]
        + [
            (end + 0.2, mempool_frame(WHALES + 1, mined=[tx["txid"] for tx in whales])),
            (end + 0.3, {"block": {"id": HASH_277647, "height": 277647, "timestamp": 1388400000}}),
        ],
    )
    with PgCluster() as cluster:
        url = clone_test_database(cluster, "faults_pg_outage")
        env = subprocess_env(
            DATABASE_URL=url, DATABASE_CONN_MAX_AGE="60", WHALE_VAR_DIR=str(tmp_path / "var")
        )
        worker = start_worker(env, tmp_path / "worker.log", name="faults-pg")
        ingest = start_ingest(
            env, tmp_path / "ingest.log", f"replay:{recording}?speed=1", "--max-seconds", "60"
        )
        try:
            wait_until(lambda: len(event_counts(url)) >= 2, timeout=30)
            cluster.stop(mode="fast")  # the rest of the stream arrives while it is down
            time.sleep(OUTAGE_S)
            recorded_during_outage = event_counts(url)
            cluster.start()
            expected = {(tx["txid"], kind) for tx in whales for kind in ("seen", "confirmed")}
            wait_until(lambda: set(event_counts(url)) >= expected, timeout=40, interval=0.5)
            time.sleep(1.5)  # a duplicate from a late retry would show up now
            counts = event_counts(url)
        finally:
            kill(ingest, signal.SIGINT)
            kill(worker, signal.SIGTERM)
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert recorded_during_outage == {}
    assert "OperationalError" in log, "the outage was meant to hit the worker"
    assert set(counts) == expected, "an event the ingest made is missing"
    assert set(counts.values()) == {1}, {k: n for k, n in counts.items() if n != 1}
    assert "rejected whale event" not in log
    assert "0 unflushed" in (tmp_path / "ingest.log").read_text(errors="replace")
