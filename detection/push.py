"""The dashboard push: a committed whale event, summarised, to the channel layer group.

The dashboard subscribes push_event to detection.signals.whale_event_committed (DashboardConfig).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from channels.layers import get_channel_layer
from redis.exceptions import ConnectionError as RedisConnectionError

from detection.models import WhaleEvent
from detection.summary import event_summary
from whaleproject.metrics import observe_detection_latency

WHALE_FEED_GROUP = "whale-feed"
PUSH_TIMEOUT_SECONDS = 5.0

log = logging.getLogger(__name__)


class _LayerLoop:
    """One event loop per process, in a daemon thread, for every push from sync code.

    `async_to_sync` makes a new loop per call, and channels-redis keeps its connection pools per
    loop, so each push paid for a fresh Redis connection: about 6 ms against under 1 ms here.
    The loop is recreated in a forked child (Celery's prefork pool), where the parent's thread
    does not exist.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid() or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="channel-layer-push", daemon=True
                ).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coroutine: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.get()).result(timeout)


_layer_loop = _LayerLoop()


def group_send(group: str, message: dict[str, Any]) -> None:
    """Send to a channel-layer group from sync code, on the process's long-lived loop."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        _layer_loop.run(layer.group_send(group, message), PUSH_TIMEOUT_SECONDS)
    except (RedisConnectionError, OSError) as exc:
        # A pooled connection that Redis dropped (a restart) fails once; a new one works.
        log.warning("channel layer send failed (%s); retrying once on a new connection", exc)
        _layer_loop.run(layer.group_send(group, message), PUSH_TIMEOUT_SECONDS)


async def agroup_send(group: str, message: dict[str, Any]) -> None:
    """group_send for code already running on an event loop (the ingest's heartbeat)."""
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(group, message)


def push_event(
    event_id: int, render_row: Callable[[dict[str, Any]], dict[str, Any]] | None = None
) -> None:
    """Push one event to the feed group. `render_row` (the dashboard's) adds the rendered row
    to the event, once per event here rather than once per socket."""
    event = WhaleEvent.everything.select_related("whale", "whale__chain", "whale__replaced_by").get(
        pk=event_id
    )
    if event.watch_only:
        return  # a watch hit below the floor: pushed to its watchers only, by the alert fan-out
    summary = event_summary(event)
    if render_row is not None:
        summary.update(render_row(dict(summary["whale"], sequence=event.sequence)))
    # whale_pk lets each process's fan-out ask the database whether a filtered feed shows it;
    # addresses let it add a viewer's private labels to the row (never sent to browsers).
    message = {
        "type": "whale.event",
        "event": summary,
        "whale_pk": event.whale_id,
        "addresses": sorted(event.whale.addresses()),
    }
    group_send(WHALE_FEED_GROUP, message)
    observe_detection_latency("pushed", event.kind, event.frame_received_at)
