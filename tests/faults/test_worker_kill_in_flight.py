"""kill -9 a worker while it holds work: what it held is recorded and delivered within 30 s, once.

The drill that found this: a worker killed while the ingest fed it lost the two tasks it held (a
record_whale_event and a send_deliveries) for the broker's visibility timeout, then 15 minutes.
Now the ingest owns every event until its row exists and publishes it again after
WHALE_EVENT_RECORD_DEADLINE_SECONDS (detection.pending_events), the sweeper resends a delivery
stranded in "sending" after WHALE_DELIVERY_STRANDED_SECONDS, and the visibility timeout is 30 s
(nothing waits on a worker unacknowledged). Every process here is real and runs with the
production defaults of those settings; the worker is killed with its whole process group, as the
OOM killer or systemd would.

The barrier is PostgreSQL itself: the test holds an EXCLUSIVE lock on the events table, so the
worker's recording waits inside its insert, where it is killed (no sleep, no test-only code).
"""

from __future__ import annotations

import re
import secrets
import signal
import time
from pathlib import Path

import pytest
from django.db import connection, transaction

from alerts.models import AttemptOutcome, Delivery, DeliveryStatus
from detection import pending_events
from detection.models import WhaleEvent
from tests.alerts.conftest import ZERO_FEE_927, make_endpoint, make_subscription, record
from tests.ingest.ingest_support import as_unconfirmed, mempool_frame, whales_277647
from tests.support.processes import (
    kill,
    kill_group,
    start_ingest,
    start_worker,
    subprocess_env,
    wait_until,
    write_recording,
)
from whaleproject.health import celery_queue_depth
from whaleproject.redis_client import get_redis, key

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PROMISE_S = 30.0


@pytest.fixture(autouse=True)
def clean_broker_and_owned_events(settings):
    """Start with no owned events and no tasks left on this Redis db by other tests."""
    prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"]
    client = get_redis()
    stale = list(client.scan_iter(f"{prefix}*"))
    client.delete(key("ingest", "owned-events"), key("ingest", "owned-events-due"), *stale)


def _worker_waiting_on_event_insert() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # a fresh activity view each poll
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE 'INSERT INTO \"detection_whaleevent\"%%'"
        )
        return cursor.fetchone()[0] > 0


def _wait_for_log(path: Path, pattern: str, timeout: float = 60.0) -> re.Match:
    return wait_until(lambda: re.search(pattern, path.read_text(errors="replace")), timeout=timeout)


def _broker_settled() -> bool:
    depth = celery_queue_depth()
    return depth is not None and depth.waiting == 0 and depth.unacked == 0


def _held_by_workers() -> int:
    depth = celery_queue_depth()
    return depth.unacked if depth is not None else -1


def test_recordings_in_progress_and_prefetched_survive_a_killed_worker(
    tmp_path, alice, receiver, allow_loopback
):
    endpoint = make_endpoint(alice, receiver.url)
    make_subscription(alice, endpoints=[endpoint], email=False, min_btc=1)
    whales = []
    for template in whales_277647()[:2]:
        tx = as_unconfirmed(template)
        tx["txid"] = secrets.token_hex(32)
        whales.append(tx)
    feed = write_recording(
        tmp_path / "feed.jsonl",
        [(0.0, mempool_frame(1, added=whales)), (120.0, mempool_frame(2))],  # then stays open
    )
    env = subprocess_env(WHALE_OUTBOUND_ALLOW_LOOPBACK="true", WHALE_VAR_DIR=str(tmp_path))
    # One pool process, two tasks prefetched: one runs, the other waits in the worker.
    doomed_log = tmp_path / "worker1.log"
    doomed = start_worker(
        env,
        doomed_log,
        name="doomed",
        options=("--pool=prefork", "--concurrency=1", "--prefetch-multiplier=2"),
    )
    heir = ingest = None
    try:
        _wait_for_log(doomed_log, r" ready\.")
        ingest = start_ingest(env, tmp_path / "ingest.log", f"replay:{feed}?speed=1")
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("LOCK TABLE detection_whaleevent IN EXCLUSIVE MODE")
            wait_until(_worker_waiting_on_event_insert, timeout=60)
            # the second event is in the worker's hands, not in the queue
            wait_until(lambda: _held_by_workers() == 2)
            assert celery_queue_depth().waiting == 0
            kill_group(doomed)
            killed_at = time.monotonic()
        assert not WhaleEvent.objects.exists()  # the dead worker's transaction rolled back

        heir = start_worker(env, tmp_path / "worker2.log", name="heir")
        wait_until(lambda: WhaleEvent.objects.count() == 2, timeout=PROMISE_S)
        recorded_after = time.monotonic() - killed_at
        receiver.wait_for(2, timeout=max(0.1, PROMISE_S - (time.monotonic() - killed_at)))
        delivered_after = time.monotonic() - killed_at
        assert recorded_after <= delivered_after <= PROMISE_S

        # Every copy of both events (the ingest's re-publish, the broker's restore of what the
        # dead worker held, after the visibility timeout) has run, and none recorded or sent again.
        wait_until(lambda: pending_events.owned_count() == 0 and _broker_settled(), timeout=90)
    finally:
        if ingest is not None:
            kill(ingest, signal.SIGINT)
        kill_group(doomed)
        if heir is not None:
            kill(heir, signal.SIGTERM)
    assert sorted(WhaleEvent.objects.values_list("whale__txid", flat=True)) == sorted(
        tx["txid"] for tx in whales
    )
    assert len(receiver.requests) == 2
    assert len(receiver.processed) == 2  # two events, each delivered once
    assert Delivery.objects.filter(status=DeliveryStatus.DELIVERED, attempts=1).count() == 2
    ingest_log = (tmp_path / "ingest.log").read_text(errors="replace")
    assert re.search(r"published [12] event\(s\) again", ingest_log), ingest_log


def test_a_send_in_progress_survives_a_killed_worker(
    tmp_path, alice, whales, receiver, allow_loopback
):
    # Two endpoints: one event's two deliveries go out as one send_deliveries task.
    first = make_endpoint(alice, receiver.url)
    second = make_endpoint(alice, receiver.url.replace("/hook", "/hook-2"))
    make_subscription(alice, endpoints=[first, second], email=False)
    receiver.script = ["hang", "hang"]  # the worker dies while both requests are in flight
    env = subprocess_env(WHALE_OUTBOUND_ALLOW_LOOPBACK="true", WHALE_VAR_DIR=str(tmp_path))
    doomed_log = tmp_path / "worker1.log"
    doomed = start_worker(env, doomed_log, name="doomed-sender")
    heir = None
    heir_log = tmp_path / "worker2.log"
    try:
        _wait_for_log(doomed_log, r" ready\.")
        event = record("seen", whales[ZERO_FEE_927])  # commits: the batch goes to the broker
        receiver.wait_for(2, timeout=60)
        task_id = _wait_for_log(doomed_log, r"alerts\.send_deliveries\[([0-9a-f-]{36})\]").group(1)
        assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENDING}
        kill_group(doomed)
        killed_at = time.monotonic()
        receiver.release()

        # The heir runs beat too: the alert sweep (every WHALE_ALERT_SWEEP_SECONDS) resends.
        heir = start_worker(env, heir_log, name="heir-sender", options=("--pool=solo", "-B"))
        wait_until(
            lambda: Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 2,
            timeout=PROMISE_S,
        )
        assert time.monotonic() - killed_at <= PROMISE_S
        # The broker gives the dead worker's task back after the visibility timeout: it must
        # find both deliveries done and send nothing.
        _wait_for_log(heir_log, rf"alerts\.send_deliveries\[{task_id}\] succeeded", timeout=90)
    finally:
        kill_group(doomed)
        if heir is not None:
            kill_group(heir, signal.SIGTERM)
    paths = sorted(request.path for request in receiver.requests)
    assert paths == ["/hook", "/hook", "/hook-2", "/hook-2"]  # the hung try and one resend each
    assert {request.headers["webhook-id"] for request in receiver.requests} == {str(event.uid)}
    for delivery in Delivery.objects.all():
        assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 2
        outcomes = [attempt.outcome for attempt in delivery.attempt_set.order_by("number")]
        assert outcomes == [AttemptOutcome.INTERRUPTED, AttemptOutcome.DELIVERED]
