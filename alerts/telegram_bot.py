"""The Telegram bot's side of linking: deep links, and the commands people send it.

No public URL is needed: a beat task long-polls getUpdates (offset = last update id + 1, so each
update is handled once; the offset is stored only after the batch is handled) and answers:

  /start <token>  links the chat to the account that made the one-time token ("Connect Telegram")
  /stop           unlinks the chat (no more alerts; the delivery log keeps what was sent)
  /mute 1h        pauses the chat's alerts for a while (m, h or d; /mute alone = 1 hour)
  /unmute         ends a pause
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from alerts import telegram_api
from alerts.models import Channel, ChatEndpoint, TelegramBotState, TelegramLink

log = logging.getLogger(__name__)

MAX_MUTE = timedelta(days=30)
_MUTE = re.compile(r"^(\d{1,4})\s*([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


class TelegramNotConfigured(Exception):
    pass


def bot_username(*, refresh: bool = False) -> str:
    """The bot's @username, from getMe (stored, so a page does not call Telegram each time)."""
    state = TelegramBotState.load()
    if state.bot_username and not refresh:
        return state.bot_username
    if not telegram_api.configured():
        raise TelegramNotConfigured("Telegram is not set up on this portal.")
    try:
        answer = telegram_api.call("getMe", {})
    except telegram_api.BotApiError as exc:
        raise TelegramNotConfigured(str(exc)) from None
    if not answer.ok or not isinstance(answer.result, dict):
        raise TelegramNotConfigured(f"getMe failed: {answer.description or answer.status}")
    state.bot_username = str(answer.result.get("username") or "")
    state.save(update_fields=["bot_username", "updated_at"])
    return state.bot_username


def deep_link(link: TelegramLink) -> str:
    return f"https://t.me/{bot_username()}?start={link.token}"


def start_link(owner) -> TelegramLink:
    """A fresh one-time token for `owner`; older unused ones stop working."""
    TelegramLink.objects.filter(owner=owner, used_at__isnull=True).delete()
    return TelegramLink.objects.create(owner=owner)


def parse_mute(argument: str) -> timedelta | None:
    argument = argument.strip().lower() or "1h"
    match = _MUTE.match(argument)
    if not match:
        return None
    span = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    return span if timedelta(0) < span <= MAX_MUTE else None


@dataclass
class PollResult:
    updates: int = 0
    linked: int = 0
    unlinked: int = 0
    muted: int = 0


def poll_once(timeout: int | None = None) -> PollResult:
    """One getUpdates call (long-polling up to `timeout` s) and the handling of its updates."""
    timeout = settings.TELEGRAM_POLL_TIMEOUT if timeout is None else timeout
    state = TelegramBotState.load()
    answer = telegram_api.call(
        "getUpdates",
        {"offset": state.update_offset, "timeout": timeout, "allowed_updates": ["message"]},
        timeout=timeout + settings.WHALE_OUTBOUND_TOTAL_TIMEOUT,
    )
    result = PollResult()
    if not answer.ok or not isinstance(answer.result, list):
        log.warning("Telegram getUpdates failed: %s %s", answer.error_code, answer.description)
        return result
    for update in answer.result:
        result.updates += 1
        try:
            with transaction.atomic():
                handle_update(update, result)
        except Exception:  # one odd update must not block the ones after it for ever
            log.exception("Telegram update %s could not be handled", update.get("update_id"))
        update_id = update.get("update_id")
        if isinstance(update_id, int):
            state.update_offset = max(state.update_offset, update_id + 1)
    if result.updates:
        state.save(update_fields=["update_offset", "updated_at"])
    return result


def handle_update(update: dict[str, Any], result: PollResult) -> None:
    message = update.get("message") or {}
    text = (message.get("text") or "").strip()
    chat = message.get("chat") or {}
    chat_id = chat.get("id")
    if not text.startswith("/") or not isinstance(chat_id, int):
        return
    command, _, argument = text.partition(" ")
    command = command.split("@", 1)[0].lower()  # "/stop@WhaleWatchBot" in groups
    title = chat.get("title") or chat.get("username") or chat.get("first_name") or ""
    if command == "/start":
        reply = link_chat(chat_id, argument.strip(), str(title))
        if reply.startswith("✅"):
            result.linked += 1
    elif command == "/stop":
        count = unlink_chat(chat_id)
        result.unlinked += count
        reply = (
            "Unlinked. This chat gets no more whale alerts."
            if count
            else "This chat is not linked to a Whale Watch account."
        )
    elif command == "/mute":
        span = parse_mute(argument)
        if span is None:
            reply = "Say how long, e.g. /mute 30m, /mute 1h or /mute 2d (at most 30 days)."
        else:
            until = timezone.now() + span
            count = ChatEndpoint.objects.filter(
                service=Channel.TELEGRAM, telegram_chat_id=chat_id, active=True
            ).update(muted_until=until)
            result.muted += count
            reply = (
                f"Muted until {until:%Y-%m-%d %H:%M} UTC. /unmute to resume."
                if count
                else "This chat is not linked to a Whale Watch account."
            )
    elif command == "/unmute":
        ChatEndpoint.objects.filter(service=Channel.TELEGRAM, telegram_chat_id=chat_id).update(
            muted_until=None
        )
        reply = "Alerts resumed."
    else:
        reply = "Commands: /stop to unlink, /mute 1h to pause, /unmute to resume."
    transaction.on_commit(lambda: _reply(chat_id, reply))


def link_chat(chat_id: int, token: str, title: str) -> str:
    link = TelegramLink.objects.select_for_update().filter(token=token).first() if token else None
    if link is None or not link.usable():
        return (
            "This link has expired or was already used. Open Whale Watch → Alerts → "
            "Connect Telegram for a new one."
        )
    chat, created = ChatEndpoint.objects.get_or_create(
        owner=link.owner,
        telegram_chat_id=chat_id,
        defaults={"service": Channel.TELEGRAM, "label": title[:200]},
    )
    if not created:
        chat.enable()
        chat.muted_until = None
        chat.label = chat.label or title[:200]
        chat.save(
            update_fields=[
                "active",
                "disabled_reason",
                "consecutive_failures",
                "muted_until",
                "label",
            ]
        )
    link.used_at, link.chat = timezone.now(), chat
    link.save(update_fields=["used_at", "chat"])
    return (
        f"✅ Linked to Whale Watch ({link.owner.get_username()}). Tick Telegram on a "
        "subscription to get its alerts here. /stop unlinks, /mute 1h pauses."
    )


def unlink_chat(chat_id: int) -> int:
    return ChatEndpoint.objects.filter(
        service=Channel.TELEGRAM, telegram_chat_id=chat_id, active=True
    ).update(active=False, disabled_reason="unlinked with /stop in the chat", muted_until=None)


def _reply(chat_id: int, text: str) -> None:
    try:
        telegram_api.call("sendMessage", {"chat_id": chat_id, "text": text})
    except telegram_api.BotApiError as exc:
        log.warning("could not answer Telegram chat: %s", exc)
