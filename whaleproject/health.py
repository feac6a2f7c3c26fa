"""Health of the moving parts: PostgreSQL, Redis, Celery workers, beat and the ingest process.

The checks are plain functions so the health endpoint, the dashboard banner and the metrics
exporter read the same facts.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import redis
from django.conf import settings
from django.db import connection

from whaleproject.celery import app
from whaleproject.redis_client import get_redis, key

INGEST_HEARTBEAT_KEY = ("ingest", "heartbeat")
BEAT_KEY = ("beat", "last")
# Beat pings every 30 s (settings.CELERY_BEAT_SCHEDULE); three missed beats is an outage.
BEAT_STALE_SECONDS = 100


@dataclass
class Check:
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)


def check_database() -> Check:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return Check(False, {"error": type(exc).__name__})
    return Check(True, {"latency_ms": round((time.perf_counter() - started) * 1000, 2)})


def check_redis() -> Check:
    started = time.perf_counter()
    try:
        get_redis().ping()
    except Exception as exc:
        return Check(False, {"error": type(exc).__name__})
    return Check(True, {"latency_ms": round((time.perf_counter() - started) * 1000, 2)})


def check_workers(timeout: float = 1.0) -> Check:
    try:
        replies = app.control.ping(timeout=timeout) or []
    except Exception as exc:
        return Check(False, {"error": type(exc).__name__})
    names = sorted(name for reply in replies for name in reply)
    detail: dict[str, Any] = {"workers": len(names), "names": names}
    ok = bool(names)
    # Workers that answer a ping but fall behind still lose the "within a second" promise.
    depth = celery_queue_depth()
    if depth is None:
        return Check(False, {**detail, "queue": "unreadable"})
    detail.update(queue_depth=depth.waiting, unacked=depth.unacked)
    if depth.waiting > settings.WHALE_QUEUE_BACKLOG_MAX:
        ok = False
        detail.update(state="backlog", queue_max=settings.WHALE_QUEUE_BACKLOG_MAX)
    return Check(ok, detail)


@dataclass
class QueueDepth:
    queue: str
    waiting: int
    unacked: int


# kombu's Redis transport keeps a queue's priority levels in separate lists: the queue name for
# priority 0 and "<name>\x06\x16<step>" for the others (kombu.transport.redis PRIORITY_STEPS).
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)


@functools.cache
def _broker_redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)


def celery_queue_depth() -> QueueDepth | None:
    """Tasks waiting in the default Celery queue, read straight from the Redis broker."""
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    prefix = options.get("global_keyprefix", "")
    queue = getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")
    names = [queue] + [f"{queue}{_PRIORITY_SEPARATOR}{step}" for step in _PRIORITY_STEPS]
    try:
        client = _broker_redis(settings.CELERY_BROKER_URL)
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.llen(f"{prefix}{name}")
        pipe.hlen(f"{prefix}{options.get('unacked_key', 'unacked')}")
        *lengths, unacked = pipe.execute()
    except Exception:  # noqa: BLE001 - the caller reports an unreadable queue
        return None
    return QueueDepth(queue=queue, waiting=sum(lengths), unacked=unacked)


def record_beat(now: float | None = None) -> None:
    get_redis().set(key(*BEAT_KEY), str(time.time() if now is None else now), ex=3600)


def check_beat() -> Check:
    try:
        raw = get_redis().get(key(*BEAT_KEY))
    except Exception as exc:
        return Check(False, {"error": type(exc).__name__})
    if raw is None:
        return Check(False, {"state": "absent"})
    age = time.time() - float(raw)
    return Check(age < BEAT_STALE_SECONDS, {"age_seconds": round(age, 1)})


def beat_age_seconds() -> float | None:
    """For the metrics: seconds since beat's heartbeat, None when absent or unreadable."""
    try:
        raw = get_redis().get(key(*BEAT_KEY))
    except Exception:  # noqa: BLE001
        return None
    return None if raw is None else max(0.0, time.time() - float(raw))


def write_ingest_heartbeat(stats: dict[str, Any]) -> None:
    payload = dict(stats, written_at=time.time())
    get_redis().set(
        key(*INGEST_HEARTBEAT_KEY),
        json.dumps(payload),
        ex=max(settings.WHALE_HEARTBEAT_STALE_SECONDS * 20, 600),
    )


def read_ingest_heartbeat() -> dict[str, Any] | None:
    raw = get_redis().get(key(*INGEST_HEARTBEAT_KEY))
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def read_ingest_heartbeat_safely() -> dict[str, Any] | None:
    try:
        return read_ingest_heartbeat()
    except Exception:  # noqa: BLE001 - Redis down reads as "no heartbeat"
        return None


def check_ingest() -> Check:
    try:
        heartbeat = read_ingest_heartbeat()
    except Exception as exc:
        return Check(False, {"error": type(exc).__name__})
    if heartbeat is None:
        return Check(False, {"state": "absent"})
    age = time.time() - float(heartbeat.get("written_at", 0))
    fresh = age < settings.WHALE_HEARTBEAT_STALE_SECONDS
    detail = {"state": "fresh" if fresh else "stale", "age_seconds": round(age, 1)}
    detail.update(
        {k: heartbeat.get(k) for k in ("source", "connected", "memory_level") if k in heartbeat}
    )
    scans = heartbeat.get("block_scans") or {}
    if scans.get("catch_up_gap_blocks"):
        # Blocks missed beyond the catch-up bound: their whales were never scanned. Said, not
        # failed: the ingest itself is healthy.
        detail["blocks_not_scanned"] = scans["catch_up_gap_blocks"]
    return Check(fresh, detail)


def overall() -> tuple[bool, dict[str, Check]]:
    checks = {"database": check_database(), "redis": check_redis()}
    if checks["redis"].ok:
        checks["workers"] = check_workers()
        checks["beat"] = check_beat()
        checks["ingest"] = check_ingest()
    else:
        unreachable = {"error": "redis unreachable"}
        checks["workers"] = Check(False, unreachable)
        checks["beat"] = Check(False, unreachable)
        checks["ingest"] = Check(False, unreachable)
    required = ("database", "redis", "workers", "beat", "ingest")
    return all(checks[name].ok for name in required), checks
