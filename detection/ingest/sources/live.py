"""Live mempool.space-compatible WebSocket source (protocol.md A.1-A.3).

On every connection: send ``{"action":"want","data":["blocks","mempool-blocks","stats"]}`` then
``{"track-mempool":true}`` (the server keeps no state across connections), then resynchronise the
whales still pending with ONE ``{"track-txs":[...]}`` of at most 100 txids (the server's
``MAX_TRACKED_TXS``; each message replaces the set it follows, so chunks would keep only the
last), the most valuable first (``set_track_provider``; the rest are counted in
``track_txs_overflow`` and checked over REST by the resync); the ``tracked-txs`` answers flow
through the parser like any frame.
Last, ``{"action":"init"}`` asks for the init data, for its current fiat ``conversions``.

Keepalive: protocol-level pings (``ping_interval``) plus the application ping
``{"action":"ping"}`` every 30 s, which the server answers with ``{"pong":true}``.
Reconnects use exponential backoff: ``base_delay`` (1 s) doubling up to ``max_delay`` (30 s), each
delay scaled by a random factor in [1 - jitter, 1 + jitter] (±20 %) and never above ``max_delay``,
so a source is retried at most 30 s after it comes back; the schedule restarts after a
connection that delivered frames. ``max_size=None``: a ``mined`` list or a backlog of ``added``
txs easily exceeds websockets' default 1 MiB.

A ``tracked-txs`` answer names a replacement (``replacedBy``) without the replacing transaction.
The answer goes on at once (the lifecycle makes a "replaced" event without the transaction, so
the chain continues whatever happens next). When that txid was not pending already, the source
fetches it in the background from the same server's REST API (``GET <scheme>://<host>/api/tx/
<txid>``, Esplora JSON with prevouts; ``ws`` -> ``http``, ``wss`` -> ``https``) with the
RestClient's timeout and bounded retries, never on the socket reader. A fetched transaction
enters the pipeline as a late frame (``set_late_frame_listener``: the runner processes and
records it like any frame) ``{"mempool-transactions": {"replaced": [{"replaced": old, "by":
tx}]}}``, the same shape a live RBF delta has, which the lifecycle turns into the "replaced"
event with the transaction. Each outcome is counted by reason in ``replacement_fetches``
("fetched", "timeout", "http_404", "bad_json", "wrong_tx", ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException

from detection.ingest.rest import RestClient, RestError, fetch_tx, is_hex_id, rest_base
from detection.ingest.sources.base import Frame, PendingProvider

LateFrameListener = Callable[[float, str], None]

log = logging.getLogger(__name__)

SUBSCRIPTIONS: tuple[dict[str, object], ...] = (
    {"action": "want", "data": ["blocks", "mempool-blocks", "stats"]},
    {"track-mempool": True},
)
# The init data carries the current fiat `conversions`; the server pushes prices only when they
# change (as rarely as once an hour), so without it a new connection would wait for a price.
INIT_MESSAGE = {"action": "init"}
PING_MESSAGE = {"action": "ping"}
TRACK_TXS_CHUNK = 100  # the server closes the connection above 100 txids per message
REST_MAX_PER_ANSWER = 32  # bounds the fetches one resync answer can start
REST_MAX_IN_FLIGHT = 64  # bounds the background fetches of all answers together


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
        fetch_replacements: bool = True,
        rest_timeout: float = 3.0,
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
        self._track_provider: PendingProvider | None = None
        self._on_connect: Callable[[], None] | None = None
        self.track_txs_overflow = 0  # pending whales left out of the last track-txs message
        self._ws: ClientConnection | None = None
        self._closing = False
        self._connected = False
        self._reconnects = 0
        self._disconnected_since: float | None = None
        self.connections = 0
        self.messages_sent = 0
        self.last_error: str | None = None
        self.delays: list[float] = []  # backoff delays actually slept, for inspection
        self.fetch_replacements = fetch_replacements
        self.rest_timeout = rest_timeout
        self.rest_base = rest_base(spec)
        # The source's REST API (replacements here, block scans in detection.ingest.blockscan):
        # one client, one set of counters.
        self.rest = RestClient(self.rest_base, timeout=rest_timeout, use_env_proxy=use_env_proxy)
        # "fetched" plus one key per failure reason ("timeout", "http_404", "bad_json", ...).
        self.replacement_fetches: Counter[str] = Counter()
        self._late_frames: LateFrameListener | None = None
        self._fetches: set[asyncio.Task[None]] = set()

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
                    if self._on_connect is not None:
                        self._on_connect()
                    pinger = asyncio.create_task(self._app_pings(ws))
                    try:
                        async for message in ws:
                            got_frames = True
                            received_at = time.time()
                            if self.fetch_replacements and self._late_frames is not None:
                                self._start_replacement_fetches(message)
                            yield received_at, message
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

    def set_connect_listener(self, listener: Callable[[], None]) -> None:
        """``listener()`` runs (on the event loop, so it must not block) after each connect."""
        self._on_connect = listener

    def set_track_provider(self, provider: PendingProvider) -> None:
        """``provider()`` returns the txids for the one ``track-txs`` message sent on connecting
        (most important first); without it, the pending txids are used."""
        self._track_provider = provider

    async def _subscribe(self, ws: ClientConnection) -> None:
        for message in SUBSCRIPTIONS:
            await self._send(ws, message)
        provider = self._track_provider or self._pending_provider
        txids = list(provider()) if provider else []
        if len(txids) > TRACK_TXS_CHUNK:
            self.track_txs_overflow = len(txids) - TRACK_TXS_CHUNK
            log.warning(
                "%d pending whales; the server follows at most %d per connection, so %d are "
                "only checked over REST after connecting",
                len(txids),
                TRACK_TXS_CHUNK,
                self.track_txs_overflow,
            )
        else:
            self.track_txs_overflow = 0
        if txids:
            # One message: each track-txs replaces the set the server follows for us.
            await self._send(ws, {"track-txs": txids[:TRACK_TXS_CHUNK]})
            log.info("resynchronising %d pending whales", min(len(txids), TRACK_TXS_CHUNK))
        await self._send(ws, INIT_MESSAGE)

    # -- replacements named by a resync answer ----------------------------------------------

    def set_late_frame_listener(self, listener: LateFrameListener) -> None:
        """``listener(received_at, raw)`` takes (on the event loop) a frame built from a
        background fetch; without one, replacements are not fetched."""
        self._late_frames = listener

    async def replacement_fetches_settled(self) -> None:
        """Wait until every background replacement fetch has ended (tests, shutdown)."""
        while self._fetches:
            await asyncio.gather(*self._fetches, return_exceptions=True)

    def _start_replacement_fetches(self, message: str | bytes) -> None:
        """Start a background fetch per unknown replacement a ``tracked-txs`` answer names."""
        if ("replacedBy" if isinstance(message, str) else b"replacedBy") not in message:
            return
        try:
            wanted = self._unknown_replacements(message)
        except Exception:  # noqa: BLE001 - an enrichment must never stop the reader
            self.replacement_fetches["error"] += 1
            log.exception("reading the replacements of a resync answer failed")
            return
        for new, old in wanted.items():
            if len(self._fetches) >= REST_MAX_IN_FLIGHT:
                self._fetch_failed(new, "too_many")
                continue
            task = asyncio.create_task(self._fetch_replacement(old, new))
            self._fetches.add(task)
            task.add_done_callback(self._fetches.discard)

    def _unknown_replacements(self, message: str | bytes) -> dict[str, str]:
        """Replacing txid -> replaced txid, for the replacements not pending already."""
        try:
            tracked = orjson.loads(message).get("tracked-txs")
        except (orjson.JSONDecodeError, AttributeError):
            return {}  # the parser counts it
        if type(tracked) is not dict:
            return {}
        known = set(self._pending_provider()) if self._pending_provider else set()
        wanted: dict[str, str] = {}
        for old, info in tracked.items():
            new = info.get("replacedBy") if type(info) is dict else None
            # Only a chain still pending continues; a stale answer must not start a new one.
            if old in known and is_hex_id(new) and new not in known and new not in wanted:
                wanted[new] = old
        if len(wanted) > REST_MAX_PER_ANSWER:
            skipped = len(wanted) - REST_MAX_PER_ANSWER
            self.replacement_fetches["too_many"] += skipped
            log.warning(
                "resync named %d unknown replacements; %d not fetched", len(wanted), skipped
            )
            wanted = dict(list(wanted.items())[:REST_MAX_PER_ANSWER])
        return wanted

    async def _fetch_replacement(self, old: str, new: str) -> None:
        try:
            tx = await fetch_tx(self.rest, new)  # the client's bounded retries and backoff
        except RestError as exc:
            self._fetch_failed(new, exc.reason, exc.detail)
            return
        except Exception:  # noqa: BLE001 - counted; the tx-less "replaced" event stands
            self.replacement_fetches["error"] += 1
            log.exception("fetching replacement %s failed", new)
            return
        self.replacement_fetches["fetched"] += 1
        listener = self._late_frames
        if listener is None or self._closing:
            return
        frame = _dumps({"mempool-transactions": {"replaced": [{"replaced": old, "by": tx}]}})
        try:
            listener(time.time(), frame)
        except Exception:  # noqa: BLE001 - the listener's own failure must not escape a task
            self.replacement_fetches["error"] += 1
            log.exception("the late frame for replacement %s was not taken", new)

    def _fetch_failed(self, txid: str, reason: str, detail: object = None) -> None:
        self.replacement_fetches[reason] += 1
        log.warning(
            "replacement %s named by a resync answer not fetched from %s (%s%s); its "
            '"replaced" event stays without the transaction',
            txid,
            self.rest_base,
            reason,
            f": {detail}" if detail is not None else "",
        )

    async def _app_pings(self, ws: ClientConnection) -> None:
        with contextlib.suppress(WebSocketException, OSError):
            while True:
                await asyncio.sleep(self.app_ping_interval)
                await self._send(ws, PING_MESSAGE)

    async def close(self) -> None:
        self._closing = True
        for task in list(self._fetches):
            task.cancel()
        ws = self._ws
        if ws is not None:
            await ws.close()
