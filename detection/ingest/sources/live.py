"""Live mempool.space-compatible WebSocket source (protocol.md A.1-A.3).

On every connection: send ``{"action":"want","data":["blocks","mempool-blocks","stats"]}`` then
``{"track-mempool":true}`` (the server keeps no state across connections), then resynchronise the
whales still pending with ``{"track-txs":[...]}`` in chunks of at most 100 txids (the server's
``MAX_TRACKED_TXS``); the ``tracked-txs`` answers flow through the parser like any frame.

Keepalive: protocol-level pings (``ping_interval``) plus the application ping
``{"action":"ping"}`` every 30 s, which the server answers with ``{"pong":true}``.
Reconnects use exponential backoff: ``base_delay`` (1 s) doubling up to ``max_delay`` (30 s), each
delay scaled by a random factor in [1 - jitter, 1 + jitter] (±20 %) and never above ``max_delay``,
so a source is retried at most 30 s after it comes back; the schedule restarts after a
connection that delivered frames. ``max_size=None``: a ``mined`` list or a backlog of ``added``
txs easily exceeds websockets' default 1 MiB.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException

from detection.ingest.sources.base import Frame, PendingProvider

log = logging.getLogger(__name__)

SUBSCRIPTIONS: tuple[dict[str, object], ...] = (
    {"action": "want", "data": ["blocks", "mempool-blocks", "stats"]},
    {"track-mempool": True},
)
PING_MESSAGE = {"action": "ping"}
TRACK_TXS_CHUNK = 100  # the server closes the connection above 100 txids per message
MAX_MESSAGES_PER_10S = 100  # server-side inbound rate limit; resync paces itself below it


def backoff_delay(
    attempt: int,
    *,
    base: float = 1.0,
    cap: float = 30.0,
    jitter: float = 0.2,
    rng: random.Random | None = None,
) -> float:
    """Delay before reconnect number ``attempt`` (0-based): base * 2**attempt, ±jitter, at most
    ``cap``. The cap bounds the jittered delay, not the nominal one: a source that comes back
    after a long outage is reconnected to within ``cap`` seconds (30 s), never 36."""
    nominal = min(cap, base * (2 ** min(attempt, 30)))
    factor = 1.0 + (rng or random).uniform(-jitter, jitter)
    return min(cap, nominal * factor)


def _dumps(message: object) -> str:
    # Text frames: the server parses text; bytes would go out as a binary frame.
    return orjson.dumps(message).decode()


class LiveSource:
    def __init__(
        self,
        spec: str,
        *,
        base_delay: float = 1.0,
        max_delay: float = 30.0,
        jitter: float = 0.2,
        app_ping_interval: float = 30.0,
        ping_interval: float | None = 30.0,
        ping_timeout: float | None = 20.0,
        open_timeout: float = 10.0,
        use_env_proxy: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        parts = urlsplit(spec)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"not a WebSocket URL: {spec!r}")
        self.spec = spec
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.jitter = jitter
        self.app_ping_interval = app_ping_interval
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.open_timeout = open_timeout
        self.use_env_proxy = use_env_proxy
        self._rng = rng or random.Random()
        self._pending_provider: PendingProvider | None = None
        self._ws: ClientConnection | None = None
        self._closing = False
        self._connected = False
        self._reconnects = 0
        self._disconnected_since: float | None = None
        self.connections = 0
        self.messages_sent = 0
        self.last_error: str | None = None
        self.delays: list[float] = []  # backoff delays actually slept, for inspection

    # -- status -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def reconnects(self) -> int:
        return self._reconnects

    @property
    def disconnected_since(self) -> float | None:
        return self._disconnected_since

    def set_pending_provider(self, provider: PendingProvider) -> None:
        """``provider()`` returns the txids to resynchronise with ``track-txs`` after connecting."""
        self._pending_provider = provider

    # -- iteration --------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Frame]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[Frame]:
        attempt = 0
        while not self._closing:
            got_frames = False
            try:
                async with connect(
                    self.spec,
                    max_size=None,
                    max_queue=64,
                    ping_interval=self.ping_interval,
                    ping_timeout=self.ping_timeout,
                    open_timeout=self.open_timeout,
                    proxy=True if self.use_env_proxy else None,
                ) as ws:
                    self._ws = ws
                    self._connected = True
                    self._disconnected_since = None
                    self.connections += 1
                    log.info("connected to %s (connection %d)", self.spec, self.connections)
                    await self._subscribe(ws)
                    pinger = asyncio.create_task(self._app_pings(ws))
                    try:
                        async for message in ws:
                            got_frames = True
                            yield time.time(), message
                    finally:
                        pinger.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await pinger
            except InvalidURI as exc:
                raise ValueError(f"bad WebSocket URL {self.spec!r}: {exc}") from exc
            except (OSError, TimeoutError, InvalidHandshake, WebSocketException) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("mempool WebSocket %s: %s", self.spec, self.last_error)
            finally:
                if self._connected or self._disconnected_since is None:
                    self._disconnected_since = time.time()
                self._connected = False
                self._ws = None
            if self._closing:
                break
            if got_frames:
                attempt = 0
            delay = backoff_delay(
                attempt, base=self.base_delay, cap=self.max_delay, jitter=self.jitter, rng=self._rng
            )
            attempt += 1
            self.delays.append(delay)
            log.info("reconnecting to %s in %.2f s", self.spec, delay)
            await asyncio.sleep(delay)
            self._reconnects += 1

    async def _send(self, ws: ClientConnection, message: object) -> None:
        await ws.send(_dumps(message))
        self.messages_sent += 1

    async def _subscribe(self, ws: ClientConnection) -> None:
        for message in SUBSCRIPTIONS:
            await self._send(ws, message)
        txids = list(self._pending_provider()) if self._pending_provider else []
        chunks = [txids[i : i + TRACK_TXS_CHUNK] for i in range(0, len(txids), TRACK_TXS_CHUNK)]
        # Stay under the server's inbound rate limit (100 messages / 10 s) on a big resync.
        pace = 10.0 / (MAX_MESSAGES_PER_10S - 10) if len(chunks) > 40 else 0.0
        for chunk in chunks:
            await self._send(ws, {"track-txs": chunk})
            if pace:
                await asyncio.sleep(pace)
        if txids:
            log.info("resynchronising %d pending whales in %d message(s)", len(txids), len(chunks))

    async def _app_pings(self, ws: ClientConnection) -> None:
        with contextlib.suppress(WebSocketException, OSError):
            while True:
                await asyncio.sleep(self.app_ping_interval)
                await self._send(ws, PING_MESSAGE)

    async def close(self) -> None:
        self._closing = True
        ws = self._ws
        if ws is not None:
            await ws.close()
