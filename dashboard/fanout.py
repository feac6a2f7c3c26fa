"""One channel-layer group member per process for all of its dashboard sockets.

Why not one group member per socket (the Channels default)? Every member costs channels-redis a
wake-up, two futures and a lock round per message, and the consumer a JSON encoding: with 500
sockets in one Daphne that put the commit → browser p99 at ~320 ms. Here the process receives each
pushed message once, encodes it once and writes the same text to every local socket (~10x less
work per socket), in the order the layer delivered it.

A socket receives pushes only after its snapshot is sent: what arrives in between is held back
and sent right after it, so a client never applies an event that its snapshot then overwrites.
If the layer fails, every local socket is closed (1011) so that browsers reconnect and re-read
the database instead of silently missing pushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Protocol

import orjson

from detection.push import WHALE_FEED_GROUP

log = logging.getLogger(__name__)

# channels-redis forgets a group member after a day (group_expiry); re-join well before that.
REJOIN_SECONDS = 3600.0
CLOSE_LAYER_FAILED = 1011


class Member(Protocol):
    async def deliver(self, text: str) -> None: ...

    async def drop(self, code: int) -> None: ...


def encode(message: dict[str, Any]) -> str | None:
    """The browser's frame for one group message, or None for a type the dashboard ignores."""
    kind = message.get("type")
    if kind == "whale.event":
        frame = {"type": "whale.event", "event": message["event"]}
    elif kind == "ingest.status":
        # server_time lets the browser judge the heartbeat's age without trusting its clock
        frame = {"type": "ingest.status", "status": message["status"], "server_time": time.time()}
    else:
        return None
    return orjson.dumps(frame, option=orjson.OPT_NON_STR_KEYS).decode()


class LocalFanout:
    def __init__(self, layer) -> None:
        self.layer = layer
        self.members: set[Member] = set()
        self.channel: str | None = None
        self._tasks: list[asyncio.Task] = []
        self._lock = asyncio.Lock()

    async def join(self, member: Member) -> None:
        async with self._lock:
            self.members.add(member)
            if not self._tasks:
                self.channel = await self.layer.new_channel()
                await self.layer.group_add(WHALE_FEED_GROUP, self.channel)
                self._tasks = [
                    asyncio.ensure_future(self._relay()),
                    asyncio.ensure_future(self._keep_membership()),
                ]

    async def leave(self, member: Member) -> None:
        async with self._lock:
            self.members.discard(member)
            if self.members or not self._tasks:
                return
            await self._stop()

    async def _stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self.layer.group_discard(WHALE_FEED_GROUP, self.channel)

    async def _relay(self) -> None:
        try:
            while True:
                text = encode(await self.layer.receive(self.channel))
                if text is None:
                    continue
                for member in list(self.members):
                    await member.deliver(text)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dashboard fan-out lost the channel layer; closing local sockets")
            await self._fail()

    async def _keep_membership(self) -> None:
        try:
            while True:
                await asyncio.sleep(REJOIN_SECONDS)
                await self.layer.group_add(WHALE_FEED_GROUP, self.channel)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dashboard fan-out could not renew its group membership")
            await self._fail()

    async def _fail(self) -> None:
        members = list(self.members)
        self.members.clear()
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self._tasks = []
        for member in members:
            with contextlib.suppress(Exception):
                await member.drop(CLOSE_LAYER_FAILED)


_by_loop: dict[asyncio.AbstractEventLoop, LocalFanout] = {}


def local_fanout(layer) -> LocalFanout:
    """This event loop's fan-out (Daphne runs one loop; tests run one per test)."""
    loop = asyncio.get_running_loop()
    for stale in [other for other in _by_loop if other.is_closed()]:
        del _by_loop[stale]
    fanout = _by_loop.get(loop)
    if fanout is None or fanout.layer is not layer:
        fanout = _by_loop[loop] = LocalFanout(layer)
    return fanout
