"""Telegram: sendMessage to the linked chat, HTML parse mode, a "View" button to the whale page.

Errors as the Bot API defines them: 429 carries parameters.retry_after (seconds) and is retried
no sooner; 403 means the bot can no longer write to the chat (the user blocked it, left the
group, deleted the account), so the chat is unlinked and its owner e-mailed; a 400 saying the
chat is gone is treated the same way. Sending is paced under Telegram's limits (alerts.pacing).
"""

from __future__ import annotations

from typing import Any

from alerts import pacing, telegram_api
from alerts.chat_format import compose, telegram_html, telegram_keyboard
from alerts.transports.base import Outcome, Transport

# 400 descriptions that mean the chat is no longer there for the bot.
GONE_CHAT = ("chat not found", "group chat was deactivated", "chat was deleted")


def send_message_params(chat_id: int, payload: dict[str, Any]) -> dict[str, Any]:
    message = compose(payload)
    params: dict[str, Any] = {
        "chat_id": chat_id,
        "text": telegram_html(message),
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": True},
    }
    keyboard = telegram_keyboard(message)
    if keyboard:
        params["reply_markup"] = keyboard
    return params


def judge(answer: telegram_api.BotAnswer) -> Outcome:
    outcome = Outcome(
        ok=answer.ok,
        status_code=answer.status,
        duration=answer.duration,
        response_excerpt=answer.excerpt,
    )
    if answer.ok:
        return outcome
    code = answer.error_code or answer.status
    outcome.error = f"Telegram {code}: {answer.description}"[:500]
    lowered = answer.description.lower()
    if answer.migrate_to_chat_id is not None:
        # The next try goes to the new id (Delivery.chat is updated by the bookkeeping).
        outcome.moved_to_chat_id = answer.migrate_to_chat_id
    elif code == 429:
        outcome.retry_after = answer.retry_after
    elif code == 403 or (code == 400 and any(gone in lowered for gone in GONE_CHAT)):
        outcome.retryable = False
        outcome.disable_endpoint = f"unlinked: Telegram answered “{answer.description}”"
    elif 400 <= code < 500:
        outcome.retryable = False
    return outcome


class TelegramTransport(Transport):
    channel = "telegram"

    def send(self) -> Outcome:
        chat = self.delivery.chat
        slot = pacing.wait_for_slot("telegram", str(chat.telegram_chat_id))
        if not slot.booked:
            return Outcome(
                ok=False,
                error=f"paced: Telegram's send limit leaves no slot for {slot.wait:.1f} s",
                retry_after=slot.wait,
                paced=True,
            )
        params = send_message_params(chat.telegram_chat_id, self.delivery.body)
        try:
            answer = telegram_api.call("sendMessage", params)
        except telegram_api.BotApiError as exc:
            return Outcome(ok=False, error=str(exc))
        return judge(answer)
