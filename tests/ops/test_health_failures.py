"""/api/v1/health/ answers 503 in each failure mode: database, Redis, workers, backlog, beat,
ingest. Each failure is real (a closed port, a missing process, a full queue), not a mock."""

import json
import time

import pytest
from django.db import connection

from tests.conftest import closed_port
from whaleproject import health
from whaleproject.redis_client import get_redis


def everything_fresh():
    health.record_beat()
    health.write_ingest_heartbeat({"source": "replay:test", "connected": True})


def failing(client, check: str) -> dict:
    response = client.get("/api/v1/health/")
    assert response.status_code == 503, response.json()
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"][check]["ok"] is False, body
    return body


def test_all_up_includes_queue_depth_for_staff(client, staff, celery_worker_process):
    everything_fresh()
    client.force_login(staff)
    response = client.get("/api/v1/health/")
    assert response.status_code == 200, response.json()
    workers = response.json()["checks"]["workers"]
    assert workers["ok"] is True
    assert workers["queue_depth"] == 0
    assert "unacked" in workers


@pytest.mark.django_db(transaction=True)
def test_database_down_is_503(client):
    everything_fresh()
    original = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = str(closed_port())
    try:
        body = failing(client, "database")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = original
    assert body["checks"]["redis"]["ok"] is True


def test_redis_down_is_503(client, db, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    get_redis.cache_clear()
    try:
        body = failing(client, "redis")
    finally:
        get_redis.cache_clear()
    assert body["checks"]["workers"]["ok"] is False


def test_no_worker_is_503(client, db):
    everything_fresh()
    failing(client, "workers")


def test_queue_backlog_is_503_even_with_a_worker(client, staff, settings, celery_worker_process):
    everything_fresh()
    # A queue no worker consumes, so the backlog stays put while the worker answers pings.
    settings.CELERY_TASK_DEFAULT_QUEUE = "ww-ops-backlog"
    settings.WHALE_QUEUE_BACKLOG_MAX = 2
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"]
    backlog_key = f"{prefix}ww-ops-backlog"
    get_redis().rpush(backlog_key, *["{}"] * 3)
    client.force_login(staff)
    try:
        body = failing(client, "workers")
    finally:
        get_redis().delete(backlog_key)
    workers = body["checks"]["workers"]
    assert (workers["state"], workers["queue_depth"], workers["queue_max"]) == ("backlog", 3, 2)
    assert workers["workers"] >= 1


def test_stale_beat_is_503(client, db, celery_worker_process):
    everything_fresh()
    health.record_beat(now=time.time() - health.BEAT_STALE_SECONDS - 5)
    failing(client, "beat")


def test_absent_ingest_is_503(client, db, celery_worker_process):
    everything_fresh()
    get_redis().delete(health.key(*health.INGEST_HEARTBEAT_KEY))
    failing(client, "ingest")


def test_stale_ingest_is_503(client, db, settings, celery_worker_process):
    everything_fresh()
    stale = json.dumps({"source": "replay:test", "written_at": time.time() - 3600})
    get_redis().set(health.key(*health.INGEST_HEARTBEAT_KEY), stale)
    failing(client, "ingest")


def test_anonymous_callers_get_no_details(client, db):
    body = failing(client, "workers")
    assert all(set(check) == {"ok"} for check in body["checks"].values())
