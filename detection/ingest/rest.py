"""The one REST client of the ingest: GETs on the source's own server, off the socket reader.

Every call goes to ``rest_base(spec)`` (the same host and port as the WebSocket; paths are built
from checked hex ids, so a server's answer never chooses where to connect), with a timeout, no
redirects (a 3xx is an error, counted as ``redirect``), a size cap, and bounded retries with
exponential backoff for transient failures (timeouts, connection errors, 5xx). A 429 waits for
its ``Retry-After`` (capped) before the next try. 404, 405 and 501 are final at once: the caller
falls back to another endpoint. The blocking urllib call runs in a worker thread
(``asyncio.to_thread``), so the event loop, and the socket reader on it, never waits for it.

Counters, for the heartbeat and /metrics: ``requests[endpoint]`` and
``failures[endpoint][reason]`` with ``endpoint`` a short name ("tx", "block_summary",
"block_raw", ...) and ``reason`` one of ``timeout``, ``unreachable``, ``redirect``,
``http_<code>``, ``too_large``, plus the callers' own content checks (``bad_json``,
``wrong_tx``, ``truncated``, ``wrong_hash``, ...) through ``count_failure``.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from typing import Any
from urllib.parse import urlsplit

import orjson

log = logging.getLogger(__name__)

REST_MAX_BYTES = 16 * 2**20  # a 4 MWU tx with prevouts is a few MiB of JSON; more is not a tx
FINAL_STATUSES = frozenset({400, 403, 404, 405, 410, 501})


class RestError(Exception):
    def __init__(self, reason: str, detail: object = None, retry_after: float | None = None):
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after
        super().__init__(f"{reason}: {detail}" if detail is not None else reason)

    @property
    def not_available(self) -> bool:
        """The endpoint does not exist on this server (or not for this id): fall back."""
        return self.reason in ("http_404", "http_405", "http_501")


def rest_base(spec: str) -> str:
    """The REST API root of the server behind a WebSocket URL, on the same host and port
    only: ``wss://host/testnet/api/v1/ws`` -> ``https://host/testnet/api``."""
    parts = urlsplit(spec)
    scheme = "https" if parts.scheme == "wss" else "http"
    netloc = parts.netloc.rpartition("@")[2]  # credentials are for the socket, never re-sent
    path = parts.path.rstrip("/")
    prefix = path[: -len("/api/v1/ws")] if path.endswith("/api/v1/ws") else ""
    return f"{scheme}://{netloc}{prefix}/api"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect could lead off the configured host; it surfaces as an HTTP error instead.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class RestClient:
    def __init__(
        self,
        base: str,
        *,
        timeout: float = 3.0,
        use_env_proxy: bool = True,
        retries: int = 2,
        backoff_base: float = 0.5,
        backoff_cap: float = 10.0,
        retry_after_cap: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        self.base = base
        self.timeout = timeout
        self.retries = retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.retry_after_cap = retry_after_cap
        self._rng = rng or random.Random()
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if not use_env_proxy:
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)
        self.requests: Counter[str] = Counter()
        self.failures: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.waited_s = 0.0  # time slept on backoff and Retry-After

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "failures": {endpoint: dict(reasons) for endpoint, reasons in self.failures.items()},
        }

    def count_failure(self, endpoint: str, reason: str, detail: object = None) -> None:
        self.failures[endpoint][reason] += 1
        log.warning(
            "REST %s on %s failed: %s%s",
            endpoint,
            self.base,
            reason,
            f" ({detail})" if detail is not None else "",
        )

    def get_once(
        self, endpoint: str, path: str, *, accept: str = "application/json", max_bytes: int
    ) -> bytes:
        """One blocking GET (call it in a worker thread). Raises RestError."""
        self.requests[endpoint] += 1
        # The scheme is http(s) by construction (rest_base); callers build paths from hex ids.
        request = urllib.request.Request(self.base + path, headers={"Accept": accept})  # noqa: S310
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                body = response.read(max_bytes + 1)
        except urllib.error.HTTPError as exc:
            with exc:
                if 300 <= exc.code < 400:
                    raise RestError("redirect", exc.headers.get("Location")) from None
                retry_after = retry_after_seconds(exc.headers.get("Retry-After"))
                raise RestError(f"http_{exc.code}", retry_after=retry_after) from None
        except urllib.error.URLError as exc:
            timed_out = isinstance(exc.reason, TimeoutError)
            raise RestError("timeout" if timed_out else "unreachable", exc.reason) from None
        except TimeoutError:
            raise RestError("timeout") from None
        except (OSError, ValueError) as exc:  # http.client errors are OSError/ValueError kin
            raise RestError("unreachable", exc) from None
        if len(body) > max_bytes:
            raise RestError("too_large", f"over {max_bytes} bytes")
        return body

    async def get(
        self,
        endpoint: str,
        path: str,
        *,
        accept: str = "application/json",
        max_bytes: int = REST_MAX_BYTES,
        retries: int | None = None,
    ) -> bytes:
        """GET with bounded retries; every failed try is counted. Raises the last RestError."""
        retries = self.retries if retries is None else retries
        attempt = 0
        while True:
            try:
                return await asyncio.to_thread(
                    self.get_once, endpoint, path, accept=accept, max_bytes=max_bytes
                )
            except RestError as exc:
                self.count_failure(endpoint, exc.reason, exc.detail)
                final = exc.reason == "redirect" or (
                    exc.reason.startswith("http_") and int(exc.reason[5:]) in FINAL_STATUSES
                )
                if final or attempt >= retries:
                    raise
                if exc.reason == "http_429" and exc.retry_after is not None:
                    delay = min(self.retry_after_cap, exc.retry_after)
                else:
                    nominal = min(self.backoff_cap, self.backoff_base * 2**attempt)
                    delay = nominal * self._rng.uniform(0.8, 1.2)
                attempt += 1
                self.waited_s += delay
                await asyncio.sleep(delay)


def is_hex_id(value: object) -> bool:
    """A txid or block hash: 64 hex digits (safe to put in a path)."""
    if type(value) is not str or len(value) != 64:
        return False
    try:
        int(value, 16)
    except ValueError:
        return False
    return True


async def fetch_tx(client: RestClient, txid: str, *, retries: int | None = None) -> dict[str, Any]:
    """``GET /api/tx/<txid>``: the Esplora transaction (with prevouts). Raises RestError."""
    if not is_hex_id(txid):
        raise RestError("bad_id", txid)
    body = await client.get("tx", f"/tx/{txid}", retries=retries)
    try:
        tx = orjson.loads(body)
    except orjson.JSONDecodeError:
        client.count_failure("tx", "bad_json")
        raise RestError("bad_json") from None
    if type(tx) is not dict or tx.get("txid") != txid:
        client.count_failure("tx", "wrong_tx")
        raise RestError("wrong_tx")
    return tx
