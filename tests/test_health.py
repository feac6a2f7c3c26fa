import json
import time

import pytest

from tests.conftest import closed_port
from whaleproject import health
from whaleproject.redis_client import get_redis


@pytest.fixture
def unreachable_redis(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    get_redis.cache_clear()
    yield
    get_redis.cache_clear()


def test_health_is_503_when_redis_is_unreachable(client, db, unreachable_redis):
    response = client.get("/api/v1/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["redis"] == {"ok": False}
    assert body["checks"]["database"] == {"ok": True}


def test_health_is_200_when_everything_is_up(client, celery_worker_process):
    health.record_beat()
    health.write_ingest_heartbeat({"source": "replay:test", "connected": True})
    response = client.get("/api/v1/health/")
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "status": "ok",
        "checks": {
            name: {"ok": True} for name in ("database", "redis", "workers", "beat", "ingest")
        },
    }


def test_health_reports_absent_ingest_heartbeat_as_503(client, staff, celery_worker_process):
    get_redis().delete(health.key(*health.INGEST_HEARTBEAT_KEY))
    health.record_beat()
    client.force_login(staff)
    response = client.get("/api/v1/health/")
    assert response.status_code == 503
    assert response.json()["checks"]["ingest"] == {"ok": False, "state": "absent"}
    assert response.json()["checks"]["workers"]["workers"] >= 1


def test_stale_ingest_heartbeat_is_503(client, settings, celery_worker_process):
    settings.WHALE_HEARTBEAT_STALE_SECONDS = 6
    health.record_beat()
    stale = json.dumps({"source": "replay:test", "written_at": time.time() - 60})
    get_redis().set(health.key(*health.INGEST_HEARTBEAT_KEY), stale)
    check = health.check_ingest()
    assert not check.ok
    assert check.detail["state"] == "stale"
    assert 59 < check.detail["age_seconds"] < 70
    assert client.get("/api/v1/health/").status_code == 503


def test_blocks_missed_beyond_the_catch_up_bound_are_said_on_health(db):
    health.write_ingest_heartbeat(
        {"source": "ws://x", "connected": True, "block_scans": {"catch_up_gap_blocks": 30}}
    )
    check = health.check_ingest()
    assert check.ok
    assert check.detail["blocks_not_scanned"] == 30
