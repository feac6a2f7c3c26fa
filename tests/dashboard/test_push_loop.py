"""detection.push.group_send: one long-lived loop per process, surviving forks and Redis restarts."""

from __future__ import annotations

import os
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers, get_channel_layer
from django.conf import settings
from django.test import override_settings

from detection import push
from tests.support.processes import RedisServer

GROUP = "push-loop-test"


@pytest.fixture
def private_layer(tmp_path):
    """The real channels-redis layer on a redis-server of this test's own, to restart at will."""
    redis = RedisServer(tmp_path)
    redis.start()
    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": redis.url, "socket_timeout": 15}],
                "prefix": f"{settings.REDIS_KEY_PREFIX}:push-loop",
            },
        }
    }
    with override_settings(CHANNEL_LAYERS=layers):
        channel_layers.backends = {}
        yield redis
        channel_layers.backends = {}
    redis.stop()


def member() -> str:
    # A plain channel name, not new_channel()'s process-local one: the test reads it from
    # several short-lived loops, which channels-redis's per-loop receive buffer does not expect.
    channel = f"push-loop-test.{uuid.uuid4().hex}"
    async_to_sync(get_channel_layer().group_add)(GROUP, channel)
    return channel


def receive(channel: str, count: int) -> list[dict]:
    """Read in one loop: channels-redis keeps a message "in flight" until the loop that read it
    reads again, so a loop per read would see the first message twice."""

    async def read() -> list[dict]:
        layer = get_channel_layer()
        return [await layer.receive(channel) for _ in range(count)]

    return async_to_sync(read)()


def test_sends_reach_the_group_on_one_reused_loop(private_layer):
    channel = member()
    push.group_send(GROUP, {"type": "whale.event", "event": {"n": 1}})
    first_loop = push._layer_loop.get()
    push.group_send(GROUP, {"type": "whale.event", "event": {"n": 2}})
    assert push._layer_loop.get() is first_loop
    assert receive(channel, 2) == [
        {"type": "whale.event", "event": {"n": 1}},
        {"type": "whale.event", "event": {"n": 2}},
    ]


def test_a_send_after_redis_restarts_does_not_fail(private_layer):
    push.group_send(GROUP, {"type": "whale.event", "event": {"n": 0}})
    private_layer.stop()
    private_layer.start()
    # Redis forgot the group; the pooled connection is dead. The send must still go through.
    channel = member()
    push.group_send(GROUP, {"type": "whale.event", "event": {"n": 1}})
    assert receive(channel, 1) == [{"type": "whale.event", "event": {"n": 1}}]


def test_a_forked_child_gets_its_own_loop(private_layer):
    channel = member()
    push.group_send(GROUP, {"type": "whale.event", "event": {"from": "parent"}})
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            push.group_send(GROUP, {"type": "whale.event", "event": {"from": "child"}})
            code = 0 if push._layer_loop._pid == os.getpid() else 2
        finally:
            os.write(write_end, bytes([code]))
            os._exit(code)
    _pid, status = os.waitpid(child, 0)
    assert os.read(read_end, 1) == b"\x00"
    assert os.waitstatus_to_exitcode(status) == 0
    assert receive(channel, 2) == [
        {"type": "whale.event", "event": {"from": "parent"}},
        {"type": "whale.event", "event": {"from": "child"}},
    ]
