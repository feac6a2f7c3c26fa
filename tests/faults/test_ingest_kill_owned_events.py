"""kill -9 the ingest while an event it made is not recorded yet: the next ingest publishes it.

Before, an event lived only in the ingest's memory until the broker took it, so a crash while the
broker was away lost it (the overflow file is written on a graceful stop only). Now the ingest
owns every event in Redis (detection.pending_events) from before it publishes it until a worker
has recorded it, and a restarted ingest publishes again whatever the dead one still owned.
"""

from __future__ import annotations

import secrets
import signal
import time

import pytest

from detection import pending_events
from detection.models import WhaleEvent
from tests.ingest.ingest_support import as_unconfirmed, mempool_frame, whales_277647
from tests.support.processes import (
    RedisServer,
    kill,
    kill_group,
    start_ingest,
    start_worker,
    subprocess_env,
    wait_until,
    write_recording,
)
from whaleproject.redis_client import get_redis, key

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_an_event_a_killed_ingest_owned_is_recorded_after_the_restart(tmp_path):
    get_redis().delete(key("ingest", "owned-events"), key("ingest", "owned-events-due"))
    tx = as_unconfirmed(whales_277647()[0])
    tx["txid"] = secrets.token_hex(32)
    feed = tmp_path / "feed.jsonl"
    write_recording(feed, [(0.0, mempool_frame(1, added=[tx])), (120.0, mempool_frame(2))])
    broker = RedisServer(tmp_path)  # the broker is away: the event cannot be published
    env = subprocess_env(CELERY_BROKER_URL=broker.url, WHALE_VAR_DIR=str(tmp_path / "var"))
    first = start_ingest(env, tmp_path / "ingest1.log", f"replay:{feed}?speed=1")
    worker = second = None
    try:
        wait_until(lambda: pending_events.owned_count() == 1, timeout=60)
        kill(first, signal.SIGKILL)  # the event was only in its memory and in the owned set

        broker.start()  # an empty broker: nothing of the first run is queued anywhere
        worker = start_worker(env, tmp_path / "worker.log", name="owned-heir")
        write_recording(feed, [(120.0, mempool_frame(3))])  # the same feed, nothing new on it
        restarted_at = time.monotonic()
        second = start_ingest(env, tmp_path / "ingest2.log", f"replay:{feed}?speed=1")
        wait_until(lambda: WhaleEvent.objects.filter(whale__txid=tx["txid"]).exists(), 30)
        assert time.monotonic() - restarted_at <= 30
        wait_until(lambda: pending_events.owned_count() == 0, timeout=30)
    finally:
        if second is not None:
            kill(second, signal.SIGINT)
        kill(first)
        if worker is not None:
            kill_group(worker, signal.SIGTERM)
        broker.stop()
    assert WhaleEvent.objects.filter(whale__txid=tx["txid"]).count() == 1
    assert "event(s) again" in (tmp_path / "ingest2.log").read_text(errors="replace")
