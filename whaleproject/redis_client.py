"""One Redis client per process for the small keys the project keeps (heartbeats)."""

from __future__ import annotations

import functools

import redis
from django.conf import settings


@functools.cache
def get_redis() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=1,
        socket_timeout=1,
        health_check_interval=30,
    )


def key(*parts: str) -> str:
    return ":".join((settings.REDIS_KEY_PREFIX, *parts))
