"""Events the ingest owns until they are recorded (docs/RELIABILITY.md, "Events are owned").

A published event is a Celery message, and a message can be lost between the ingest and the
database: a worker killed while it holds it (Redis gives it back only after the visibility
timeout), a publish the broker lost in a restart, a PostgreSQL outage that fails the task. So the
ingest writes each event here (Redis) before publishing it, the worker settles it once its row,
or the reason there will be none, is committed, and the ingest publishes again, every
WHALE_EVENT_RECORD_DEADLINE_SECONDS, any event still unsettled. Recording is idempotent by the
event's uid, so a repeat costs one no-op task. The set outlives the ingest process: after a
SIGKILL, the restarted ingest publishes what the dead one owned.

Only while no task waits in the broker's queue: then an unsettled event is not among the queued
tasks but lost. While tasks wait (a backlog, the workers behind) an overdue event may simply be
queued, and publishing it again would feed the backlog it waits in; a message a dead worker held
then comes back through the broker's visibility timeout (30 s) anyway.

Two keys: a hash event_id → {"owned_at", "event"} and a sorted set event_id → when it is due
again. Entries live seconds; one still unsettled after MAX_AGE is dropped with an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
import redis
from django.conf import settings

from whaleproject.redis_client import get_redis, key

log = logging.getLogger(__name__)

# An event nobody could record for a day (PostgreSQL away that long) is given up, loudly: its
# alerts would mislead by then, and the ingest's own restore (pending whales) takes over.
MAX_AGE = 24 * 3600.0
# Publishes per sweep, so one sweep after a long outage stays short.
SWEEP_BATCH = 500


def _events_key() -> str:
    return key("ingest", "owned-events")


def _due_key() -> str:
    return key("ingest", "owned-events-due")


def deadline() -> float:
    return float(settings.WHALE_EVENT_RECORD_DEADLINE_SECONDS)


def own(event: dict[str, Any], now: float | None = None) -> None:
    """Keep `event` until a worker settles it. Raises redis.RedisError (the caller retries)."""
    now = time.time() if now is None else now
    event_id = str(event["event_id"])
    entry = orjson.dumps({"owned_at": now, "event": event})
    pipe = get_redis().pipeline(transaction=True)
    pipe.hsetnx(_events_key(), event_id, entry)  # a re-publish keeps the first owned_at
    pipe.zadd(_due_key(), {event_id: now + deadline()})
    pipe.execute()


def settle(event_id: Any) -> None:
    """The event is recorded (or can never be): stop owning it. Never raises."""
    if not event_id:
        return
    try:
        pipe = get_redis().pipeline(transaction=True)
        pipe.hdel(_events_key(), str(event_id))
        pipe.zrem(_due_key(), str(event_id))
        pipe.execute()
    except redis.RedisError as exc:
        # The ingest will publish it once more; the recording then finds it and does nothing.
        log.warning("could not settle event %s (%s); it will be published again", event_id, exc)


def owned_count() -> int:
    return get_redis().zcard(_due_key())


def publish_overdue(
    publish: Callable[[dict[str, Any]], Any],
    now: float | None = None,
    *,
    queue_waiting: int | None = 0,
) -> int:
    """Publish again every owned event past its deadline; returns how many were published.

    `queue_waiting` is the number of tasks waiting in the broker's queue (None: unknown, as when
    the broker is down): overdue events wait while it is above 0.
    """
    if queue_waiting:
        return 0
    now = time.time() if now is None else now
    client = get_redis()
    overdue = [
        raw.decode()
        for raw in client.zrangebyscore(_due_key(), "-inf", now, start=0, num=SWEEP_BATCH)
    ]
    if not overdue:
        return 0
    published = 0
    for event_id, raw in zip(overdue, client.hmget(_events_key(), overdue), strict=True):
        if raw is None:  # settled meanwhile
            client.zrem(_due_key(), event_id)
            continue
        entry = orjson.loads(raw)
        if now - entry["owned_at"] > MAX_AGE:
            log.error("event %s not recorded for %.0f s; giving it up", event_id, MAX_AGE)
            settle(event_id)
            continue
        # Pushed back first: a publish that fails is tried again at the next deadline. XX: an
        # event settled in between is not brought back.
        client.zadd(_due_key(), {event_id: now + deadline()}, xx=True)
        publish(entry["event"])
        published += 1
    if published:
        log.warning(
            "published %s event(s) again: not recorded within %.0f s", published, deadline()
        )
    return published
