"""A small Telegram Bot API client: POST JSON to <TELEGRAM_API_URL>/bot<token>/<method>.

The API URL is the operator's setting (Telegram's own server or a self-hosted telegram-bot-api),
not user input, so it does not go through the webhook SSRF guard; it has the same timeouts. The
token is part of every URL, so no URL is ever logged or put in an error message.

Every answer is Telegram's envelope: {"ok": true, "result": ...} or {"ok": false, "error_code":
429, "description": "Too Many Requests: retry after 7", "parameters": {"retry_after": 7}}.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from django.conf import settings

USER_AGENT = "WhaleWatch-Alerts/1.0"
MAX_ANSWER_BYTES = 1024 * 1024  # getUpdates returns at most 100 updates


class BotApiError(Exception):
    """No answer from the Bot API (network, timeout, not JSON). Safe to show: no token inside."""


@dataclass
class BotAnswer:
    status: int
    ok: bool
    result: Any = None
    error_code: int | None = None
    description: str = ""
    retry_after: float | None = None
    # A group that became a supergroup has a new chat id (400 with parameters.migrate_to_chat_id).
    migrate_to_chat_id: int | None = None
    duration: float = 0.0
    excerpt: str = ""


def configured() -> bool:
    return bool(settings.TELEGRAM_BOT_TOKEN)


def call(method: str, params: dict[str, Any], *, timeout: float | None = None) -> BotAnswer:
    if not configured():
        raise BotApiError("Telegram is not set up on this portal (TELEGRAM_BOT_TOKEN is empty)")
    url = f"{settings.TELEGRAM_API_URL}/bot{settings.TELEGRAM_BOT_TOKEN}/{method}"
    body = json.dumps(params, separators=(",", ":"), ensure_ascii=False).encode()
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked by the setting
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
    )
    started = time.monotonic()
    limit = timeout if timeout is not None else settings.WHALE_OUTBOUND_TOTAL_TIMEOUT
    try:
        with urllib.request.urlopen(request, timeout=limit) as answer:  # noqa: S310
            status, raw = answer.status, answer.read(MAX_ANSWER_BYTES)
    except urllib.error.HTTPError as exc:  # Telegram answers errors with 4xx/5xx and a body
        status, raw = exc.code, exc.read(MAX_ANSWER_BYTES)
    except TimeoutError:
        raise BotApiError(f"Telegram did not answer {method} within {limit:g} s") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BotApiError(f"Telegram unreachable: {reason.__class__.__name__}") from None
    duration = time.monotonic() - started
    excerpt = raw[:1000].decode("utf-8", errors="replace")
    try:
        envelope = json.loads(raw)
    except ValueError:
        return BotAnswer(
            status=status,
            ok=False,
            error_code=status,
            description=f"HTTP {status} without a Bot API answer",
            duration=duration,
            excerpt=excerpt,
        )
    if not isinstance(envelope, dict):
        envelope = {}
    parameters = envelope.get("parameters") or {}
    retry_after = parameters.get("retry_after")
    migrate_to = parameters.get("migrate_to_chat_id")
    return BotAnswer(
        status=status,
        ok=bool(envelope.get("ok")) and 200 <= status < 300,
        result=envelope.get("result"),
        error_code=envelope.get("error_code"),
        description=str(envelope.get("description") or ""),
        retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
        migrate_to_chat_id=migrate_to if isinstance(migrate_to, int) else None,
        duration=duration,
        excerpt=excerpt,
    )
