"""The dashboard's live feed. Channels carries display hints only; the database is the truth.

Protocol (the browser side is static/js/feed.js):

* A logged-in session is enough. The session (or the newest JWT) is re-checked every
  WHALE_SOCKET_SESSION_CHECK_SECONDS and the socket closed with 4401 once it is logged out,
  revoked (POST /api/v1/auth/logout/) or its password changed. Without one the socket is accepted and must authenticate with
  `{"type": "auth", "token": "<simplejwt access token>"}` within AUTH_TIMEOUT_SECONDS, else it is
  closed with 4401. A JWT socket is closed with 4401 when its token expires, unless the client
  sent a fresher token by then (the same message again).
* Once authenticated the server sends `{"type": "snapshot", "whales": [...], "ingest": {...},
  "banner": {...}}` from the database, then `whale.event` and `ingest.status` pushes as they come.
  Every whale carries `row_html` (the page's row, dashboard/rows.py); a `whale.event`'s event
  carries `row_html` (USD) and `row_html_by_currency`, with the user's own private labels of
  the whale's addresses in their labels slot (dashboard.rows); an `ingest.status` carries `banner`
  (state, words and the moments they change, dashboard/source_health.py).
* `?flow=…&entity=…&urgency=…&min_btc=…&max_btc=…&status=…` on the URL filters the snapshot
  like the feed page's URL, and each `whale.event` then says `"matches": true|false` (the
  server's verdict, through the REST API's FilterSet); `?whales=0` asks for a snapshot without
  whales (banner-only pages).
* The client may send `{"type": "ping"}` and gets `{"type": "pong"}` (a liveness check).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from importlib import import_module
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user

from dashboard.api_auth import GenerationJWTAuthentication
from dashboard.context_processors import user_display_currency
from dashboard.fanout import CLOSE_LAYER_FAILED, local_fanout
from dashboard.feed_filters import filters_from_query
from dashboard.live import snapshot_message
from dashboard.watch_panel import all_private_labels
from detection.push import WHALE_FEED_GROUP

CLOSE_UNAUTHENTICATED = 4401
AUTH_TIMEOUT_SECONDS = 5.0
# An alias no settings define, so Channels gives the socket no channel of its own (see below).
NO_SOCKET_CHANNEL = "dashboard.fanout-only"

log = logging.getLogger(__name__)

__all__ = ["CLOSE_UNAUTHENTICATED", "WHALE_FEED_GROUP", "WhaleFeedConsumer"]


@database_sync_to_async
def _user_for_token(raw_token: str):
    """(user, expiry epoch) for a valid access token, else None."""
    from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError

    auth = GenerationJWTAuthentication()  # a revoked token (logout, new password) is refused
    try:
        validated = auth.get_validated_token(raw_token.encode())
        user = auth.get_user(validated)
    except (InvalidToken, TokenError, AuthenticationFailed):
        return None
    if not user.is_active:
        return None
    return user, float(validated["exp"])


@database_sync_to_async
def _session_still_holds(session_key: str | None, user_id) -> bool:
    """Whether the session still logs in `user_id`: not logged out or flushed, and its auth hash
    still matches (a password change ends every other session)."""
    if not session_key:
        return False
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    current = get_user(SimpleNamespace(session=store))
    return current.is_authenticated and current.pk == user_id and current.is_active


async def _token_still_holds(raw_token: str) -> bool:
    return await _user_for_token(raw_token) is not None


@database_sync_to_async
def _snapshot(filters: dict[str, Any], with_whales: bool, user, labels) -> dict[str, Any]:
    # The snapshot is this socket's own: its rows are in the user's display currency, with
    # the user's private labels.
    currency = user_display_currency(user)
    return snapshot_message(filters, with_whales=with_whales, currency=currency, labels=labels)


_private_labels = database_sync_to_async(all_private_labels)


class WhaleFeedConsumer(AsyncJsonWebsocketConsumer):
    auth_timeout_seconds = AUTH_TIMEOUT_SECONDS
    # Pushes arrive through the process's fan-out, never on a per-socket channel. With one,
    # Channels keeps a layer receive open per socket for nothing, and after a Redis restart that
    # receive can hang while being cancelled: the socket stays accepted and never gets its
    # snapshot or a push (tests/faults/test_redis_restart_dashboard.py).
    channel_layer_alias = NO_SOCKET_CHANNEL

    async def connect(self):
        self.user = None
        self.token_expires_at: float | None = None
        self._timer: asyncio.Task | None = None
        self._session_watch: asyncio.Task | None = None
        self._fanout = None
        self._live = False
        self._held_back: list[str] = []
        # The user's private labels ({address: name}), read once per socket and again when they
        # change ("labels.changed"): the fan-out adds them to pushed rows (dashboard.rows).
        self.private_labels: dict[str, str] = {}
        query = dict(parse_qsl(self.scope.get("query_string", b"").decode("latin-1")))
        # The feed's own filters shape its snapshot; pages without a feed ask for no whales.
        self.filters = filters_from_query(query)
        self.wants_whales = query.get("whales") != "0"
        # Accept first: a close before the handshake reaches the client as a bare 403, and
        # clients need the 4401 code to tell "log in again" from a network fault.
        await self.accept()
        session_user = self.scope.get("user")
        if session_user is not None and session_user.is_authenticated:
            await self._start_feed(session_user)
            session_key = getattr(self.scope.get("session"), "session_key", None)
            user_id = session_user.pk
            self._watch(lambda: _session_still_holds(session_key, user_id))
        else:
            self._arm_timer(self.auth_timeout_seconds)

    async def disconnect(self, code):
        if self._timer is not None:
            self._timer.cancel()
        if self._session_watch is not None:
            self._session_watch.cancel()
        if self._fanout is not None:
            await self._fanout.leave(self)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "auth":
            await self._authenticate(content.get("token"))
        elif kind == "ping":
            await self.send_json({"type": "pong"})
        elif self.user is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            content = await self.decode_json(text_data if text_data is not None else bytes_data)
        except (ValueError, TypeError):  # not JSON: nothing a client of this protocol sends
            content = None
        await self.receive_json(content)

    async def _authenticate(self, token: Any) -> None:
        found = await _user_for_token(token) if isinstance(token, str) and token else None
        if found is None or (self.user is not None and found[0].pk != self.user.pk):
            # A bad token, or a token for someone else mid-stream: the socket is not theirs.
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        user, expires_at = found
        self.token_expires_at = expires_at
        self._arm_timer(max(0.0, expires_at - time.time()))
        # The newest token is the one re-checked: a logout or password change revokes it.
        self._watch(lambda: _token_still_holds(token))
        if self.user is None:
            await self._start_feed(user)

    async def _start_feed(self, user) -> None:
        self.user = user
        # Join before reading the snapshot, and hold pushes back until it is sent: an event
        # committed in between then arrives twice (the browser ignores the repeat by its
        # sequence) instead of never, and never before the snapshot that would overwrite it.
        fanout = local_fanout(get_channel_layer())
        try:
            await fanout.join(self)
        except Exception:
            # Redis is away: a socket without pushes would look live and stay frozen; closing
            # makes the browser retry with backoff and take a snapshot once Redis is back.
            log.warning("dashboard socket refused: the channel layer is unavailable", exc_info=True)
            await fanout.leave(self)
            await self.close(code=CLOSE_LAYER_FAILED)
            return
        self._fanout = fanout
        self.private_labels = await _private_labels(user)
        await self.send_json(
            await _snapshot(self.filters, self.wants_whales, user, self.private_labels)
        )
        while self._held_back:
            await self.send(text_data=self._held_back.pop(0))
        self._live = True

    async def deliver(self, text: str) -> None:
        """One pushed frame from the process's fan-out (dashboard.fanout)."""
        if not self._live:
            self._held_back.append(text)
            return
        with contextlib.suppress(Exception):  # a socket closing under us must not stop the relay
            await self.send(text_data=text)

    async def reload_labels(self) -> None:
        """The user's private labels changed (another tab, the API): read them again."""
        try:
            self.private_labels = await _private_labels(self.user)
        except Exception:  # the database is away: keep the old ones until the next change
            log.warning("dashboard socket: private labels not reloaded", exc_info=True)

    async def drop(self, code: int) -> None:
        self._fanout = None
        await self.close(code=code)

    def _watch(self, still_holds) -> None:
        """Re-checks the credential (session or token) every WHALE_SOCKET_SESSION_CHECK_SECONDS
        and closes with 4401 once it is logged out, revoked or its password changed."""
        if self._session_watch is not None:
            self._session_watch.cancel()
        self._session_watch = asyncio.ensure_future(self._watch_loop(still_holds))

    async def _watch_loop(self, still_holds) -> None:
        while True:
            await asyncio.sleep(settings.WHALE_SOCKET_SESSION_CHECK_SECONDS)
            try:
                holds = await still_holds()
            except Exception:  # the database is away: keep the socket, check again later
                log.warning("dashboard socket: credential check failed", exc_info=True)
                continue
            if not holds:
                self._session_watch = None
                with contextlib.suppress(Exception):
                    await self.close(code=CLOSE_UNAUTHENTICATED)
                return

    def _arm_timer(self, seconds: float) -> None:
        """Close with 4401 after `seconds` (auth deadline, or the token's expiry)."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.ensure_future(self._close_later(seconds))

    async def _close_later(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._timer = None
        with contextlib.suppress(Exception):  # the socket may be gone already
            await self.close(code=CLOSE_UNAUTHENTICATED)
