"""Redis restarts under a running Daphne: dashboard sockets must get live pushes again.

The channel layer is at-most-once and Redis (without persistence, as here) forgets every group
membership when it restarts. What must not happen is a socket that stays open, answers pings,
and never receives another push: the browser would show a "Live" feed that is frozen. Either
the socket keeps receiving, or the server closes it so the browser reconnects and re-reads the
database (static/js/feed.js).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import orjson
import pytest
from django.conf import settings
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from detection.push import WHALE_FEED_GROUP
from tests.faults.support import Daphne
from tests.support.processes import RedisServer, subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The browser's backoff (static/js/feed.js): 1 s doubling; it never waits long here.
FIRST_RETRY = 1.0
RECOVERY_LIMIT = 15.0


def session_cookie(user) -> str:
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "dashboard.auth.UsernameOrEmailBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.save()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


class BrowserSocket:
    """What feed.js does: connect, read, reconnect with backoff after any close."""

    def __init__(self, daphne: Daphne, cookie: str):
        self.daphne = daphne
        self.cookie = cookie
        self.messages: list[tuple[int, dict]] = []  # (connection number, message)
        self.connections = 0
        self.closes: list[int | None] = []
        self.stopped = False

    async def run(self) -> None:
        attempt = 0
        while not self.stopped:
            try:
                async with connect(
                    self.daphne.url,
                    additional_headers={"Cookie": self.cookie, "Origin": self.daphne.origin},
                    open_timeout=5,
                ) as ws:
                    self.connections += 1
                    async for raw in ws:
                        message = orjson.loads(raw)
                        if message.get("type") == "snapshot":
                            attempt = 0
                        self.messages.append((self.connections, message))
                    self.closes.append(ws.close_code)
            except (OSError, TimeoutError, WebSocketException):
                self.closes.append(None)
            await asyncio.sleep(min(30.0, FIRST_RETRY * 2**attempt))
            attempt += 1

    def markers(self) -> list[str]:
        return [
            m["status"].get("marker")
            for _, m in self.messages
            if m.get("type") == "ingest.status" and m["status"].get("marker")
        ]

    def snapshots(self) -> int:
        return sum(1 for _, m in self.messages if m.get("type") == "snapshot")


async def publish(redis_url: str, marker: str) -> None:
    from channels_redis.core import RedisChannelLayer

    layer = RedisChannelLayer(
        hosts=[{"address": redis_url}], prefix=f"{settings.REDIS_KEY_PREFIX}:asgi"
    )
    try:
        await layer.group_send(
            WHALE_FEED_GROUP, {"type": "ingest.status", "status": {"marker": marker}}
        )
    finally:
        await layer.close_pools()


async def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


def test_dashboard_sockets_get_pushes_again_after_redis_restarts(tmp_path, alice):
    redis = RedisServer(tmp_path)
    redis.start()
    daphne = Daphne(subprocess_env(REDIS_URL=redis.url), tmp_path / "daphne.log")
    daphne.start()
    browser = BrowserSocket(daphne, session_cookie(alice))

    async def scenario() -> float:
        client = asyncio.create_task(browser.run())
        try:
            await wait_for(lambda: browser.snapshots() >= 1, 15, "the first snapshot")
            await publish(redis.url, "before")
            await wait_for(lambda: "before" in browser.markers(), 5, "a push before the restart")

            redis.stop()
            redis.start()
            restarted = time.monotonic()
            # The ingest pushes its status every 5 s; here every 0.5 s, each one distinct.
            for number in range(int(RECOVERY_LIMIT / 0.5)):
                with contextlib.suppress(Exception):
                    await publish(redis.url, f"after-{number}")
                await asyncio.sleep(0.5)
                if any(m.startswith("after-") for m in browser.markers()):
                    return time.monotonic() - restarted
            raise AssertionError(
                f"no push reached the dashboard within {RECOVERY_LIMIT} s of the Redis restart "
                f"(connections {browser.connections}, closes {browser.closes}, "
                f"snapshots {browser.snapshots()}, markers {browser.markers()})"
            )
        finally:
            browser.stopped = True
            client.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await client

    try:
        recovery = asyncio.run(scenario())
    finally:
        daphne.stop()
        redis.stop()
    assert recovery < RECOVERY_LIMIT, daphne.log()
    # Whatever the socket lost while Redis was away came back with a fresh snapshot.
    if browser.connections > 1:
        assert browser.snapshots() >= 2
