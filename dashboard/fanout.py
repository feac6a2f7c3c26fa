"""One channel-layer group member per process for all of its dashboard sockets.

Why not one group member per socket (the Channels default)? Every member costs channels-redis a
wake-up, two futures and a lock round per message, and the consumer a JSON encoding: with 500
sockets in one Daphne that put the commit → browser p99 at ~320 ms. Here the process receives each
pushed message once, encodes it once and writes the same text to every local socket (~10x less
work per socket), in the order the layer delivered it.

A socket receives pushes only after its snapshot is sent: what arrives in between is held back
and sent right after it, so a client never applies an event that its snapshot then overwrites.
If the layer fails, every local socket is closed (4011) so that browsers reconnect and re-read
the database instead of silently missing pushes. A Redis restart can also go unnoticed by the
relay (redis-py retries a dropped BZPOPMIN on a new connection) while the restarted server has
forgotten the group, or pushes were lost while it was down: the watch task below compares the
server's run_id every few seconds and treats a change as a layer failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Protocol

import orjson
from channels.db import database_sync_to_async

from dashboard.feed_filters import whale_matches
from dashboard.rows import own_labels, with_labels
from dashboard.source_health import banner_payload
from detection.push import WHALE_FEED_GROUP

log = logging.getLogger(__name__)

# Every few seconds: renew the group membership (channels-redis forgets a member after a day)
# and look for a Redis restart. A restart goes unseen for at most this long.
WATCH_SECONDS = 5.0
# An application close code: Daphne (autobahn) refuses to send any code but 1000 and 3000-4999,
# and the refusal is an exception swallowed below, so 1011 left the socket open and frozen.
# The browser reconnects on any code but 4401 (static/js/feed.js).
CLOSE_LAYER_FAILED = 4011
# A cancelled layer receive normally ends at once; never let one hold up the lock for longer.
STOP_WAIT_SECONDS = 1.0


class Member(Protocol):
    async def deliver(self, text: str) -> None: ...

    async def reload_labels(self) -> None: ...

    async def drop(self, code: int) -> None: ...


def encode(
    message: dict[str, Any], matches: bool | None = None, labels: dict[str, str] | None = None
) -> str | None:
    """The browser's frame for one group message, or None for a type the dashboard ignores.

    `matches` is said to a filtered feed only: whether its filters show the event's whale
    (decided by the server, dashboard.feed_filters.whale_matches; the browser holds no rule).
    `labels` are one viewer's private labels of the whale's addresses, shown in its rows.
    """
    kind = message.get("type")
    if kind == "whale.event":
        event = with_labels(message["event"], labels) if labels else message["event"]
        frame = {"type": "whale.event", "event": event}
        if matches is not None:
            frame["matches"] = matches
    elif kind == "watch.hit":
        # Watchlists (issue 21): one owner's hit; _relay gives it to that owner's sockets only.
        frame = {"type": "watch.hit", "hit": message["hit"]}
    elif kind == "ingest.status":
        # The banner's state and words come from dashboard.source_health, judged here (the
        # browser only shows them); server_time lets it follow the judged timeline's moments.
        now = time.time()
        frame = {
            "type": "ingest.status",
            "status": message["status"],
            "server_time": now,
            "banner": banner_payload(message["status"], now),
        }
    else:
        return None
    return orjson.dumps(frame, option=orjson.OPT_NON_STR_KEYS).decode()


_whale_matches = database_sync_to_async(whale_matches)


def _filter_key(filters: dict[str, Any]) -> tuple:
    return tuple(sorted(filters.items()))


async def _matches(message: dict[str, Any], filters: dict[str, Any]) -> bool | None:
    try:
        return await _whale_matches(filters, message["whale_pk"])
    except Exception:
        # The database is away: this filtered feed misses one push (display only, like every
        # push); its next connect's snapshot is read from the database again.
        log.warning("dashboard fan-out: could not judge a filtered feed's event", exc_info=True)
        return None


def _member_user_id(member: Member) -> int | None:
    user = getattr(member, "user", None)
    return getattr(user, "pk", None)


class LocalFanout:
    def __init__(self, layer) -> None:
        self.layer = layer
        self.members: set[Member] = set()
        self.channel: str | None = None
        self._tasks: list[asyncio.Task] = []
        self._lock = asyncio.Lock()
        self._servers: list[str | None] = []

    async def join(self, member: Member) -> None:
        async with self._lock:
            self.members.add(member)
            if not self._tasks:
                self.channel = await self.layer.new_channel()
                self._servers = await self._server_ids()
                await self.layer.group_add(WHALE_FEED_GROUP, self.channel)
                self._tasks = [
                    asyncio.ensure_future(self._relay()),
                    asyncio.ensure_future(self._watch()),
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
        # This runs under the lock every join needs: a receive that does not end promptly (seen
        # after a Redis restart) must not keep new sockets from their snapshot.
        await asyncio.wait(tasks, timeout=STOP_WAIT_SECONDS)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.layer.group_discard(WHALE_FEED_GROUP, self.channel), STOP_WAIT_SECONDS
            )

    async def _relay(self) -> None:
        try:
            while True:
                message = await self.layer.receive(self.channel)
                if message.get("type") == "labels.changed":
                    await self._reload_labels(message.get("user_id"))
                    continue
                text = encode(message)
                if text is None:
                    continue
                if message.get("type") == "whale.event":
                    await self._relay_event(message, text)
                    continue
                owner = message.get("user_id") if message.get("type") == "watch.hit" else None
                for member in list(self.members):
                    if owner is None or _member_user_id(member) == owner:
                        await member.deliver(text)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dashboard fan-out lost the channel layer; closing local sockets")
            await self._fail()

    async def _relay_event(self, message: dict[str, Any], shared: str) -> None:
        """A whale event to every socket: one encoding for all, except a filtered feed's
        verdict (one database question per distinct filter, not per socket) and a socket
        whose user named one of the whale's addresses (its own frame, its labels in the rows)."""
        addresses = message.get("addresses") or ()
        verdicts: dict[tuple, bool | None] = {}
        filtered: dict[tuple, str | None] = {}
        for member in list(self.members):
            filters = getattr(member, "filters", None)
            matches = None
            if filters:
                key = _filter_key(filters)
                if key not in verdicts:
                    verdicts[key] = await _matches(message, filters)
                matches = verdicts[key]
                if matches is None:
                    continue
            labels = getattr(member, "private_labels", None)
            mine = own_labels(labels, addresses) if labels else None
            if mine:
                text = encode(message, matches=matches, labels=mine)
            elif filters:
                if key not in filtered:
                    filtered[key] = encode(message, matches=matches)
                text = filtered[key]
            else:
                text = shared
            await member.deliver(text)

    async def _reload_labels(self, user_id) -> None:
        for member in list(self.members):
            if user_id is not None and _member_user_id(member) == user_id:
                await member.reload_labels()

    async def _watch(self) -> None:
        try:
            while True:
                await asyncio.sleep(WATCH_SECONDS)
                if await self._server_ids() != self._servers:
                    log.warning("dashboard fan-out: Redis restarted; closing local sockets")
                    await self._fail()
                    return
                await self.layer.group_add(WHALE_FEED_GROUP, self.channel)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dashboard fan-out lost the channel layer; closing local sockets")
            await self._fail()

    async def _server_ids(self) -> list[str | None]:
        """Each Redis server's run_id: it changes when the server restarts."""
        connection = getattr(self.layer, "connection", None)
        if connection is None:  # not channels-redis (an in-memory layer): nothing restarts
            return []
        ids = []
        for index in range(self.layer.ring_size):
            info = await connection(index).info("server")
            ids.append(info.get("run_id"))
        return ids

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
