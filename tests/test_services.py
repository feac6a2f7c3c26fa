"""Celery and Channels through the real Redis: no eager mode, no in-memory layer."""

import time

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from dashboard.consumers import CLOSE_UNAUTHENTICATED, WHALE_FEED_GROUP
from tests.dashboard.conftest import session_headers
from whaleproject import health
from whaleproject.asgi import application
from whaleproject.tasks import beat_heartbeat


def test_celery_task_round_trip_through_real_worker(celery_worker_process):
    health.get_redis().delete(health.key(*health.BEAT_KEY))
    before = time.time()
    beat_heartbeat.delay()
    deadline = time.time() + 10
    while time.time() < deadline:
        raw = health.get_redis().get(health.key(*health.BEAT_KEY))
        if raw is not None:
            break
        time.sleep(0.05)
    assert raw is not None, "the worker never ran the task"
    assert float(raw) >= before


@pytest.mark.django_db(transaction=True)
async def test_group_send_reaches_a_logged_in_socket(alice):
    headers = await session_headers(alice)
    communicator = WebsocketCommunicator(application, "/ws/whales/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    snapshot = await communicator.receive_json_from(timeout=5)
    assert snapshot["type"] == "snapshot"
    await get_channel_layer().group_send(
        WHALE_FEED_GROUP, {"type": "whale.event", "event": {"txid": "ab" * 32, "kind": "seen"}}
    )
    message = await communicator.receive_json_from(timeout=5)
    assert message == {"type": "whale.event", "event": {"txid": "ab" * 32, "kind": "seen"}}
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_anonymous_socket_is_closed_with_4401():
    communicator = WebsocketCommunicator(
        application,
        "/ws/whales/",
        headers=[(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")],
    )
    connected, _ = await communicator.connect()
    assert connected
    # The consumer waits up to 5 s for a JWT before closing; allow for that wait.
    closed = await communicator.receive_output(timeout=8)
    assert closed["type"] == "websocket.close"
    assert closed["code"] == CLOSE_UNAUTHENTICATED


@pytest.mark.django_db(transaction=True)
async def test_foreign_origin_is_refused(alice):
    headers = await session_headers(alice)
    headers = [h for h in headers if h[0] != b"origin"] + [(b"origin", b"https://evil.example")]
    communicator = WebsocketCommunicator(application, "/ws/whales/", headers=headers)
    connected, _ = await communicator.connect()
    assert not connected
