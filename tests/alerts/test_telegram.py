"""Telegram end to end against a local Bot API server: link by deep link, alerts in order with
the exact bytes sent, /stop, /mute, 429 with retry_after, 403 unlinks and e-mails the owner."""

from __future__ import annotations

import dataclasses
import json
import random
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts import tasks, telegram_bot
from alerts.chat_format import ChatMessage, telegram_keyboard
from alerts.delivery import send_delivery
from alerts.fanout import fan_out
from alerts.models import ChatEndpoint, Delivery, DeliveryStatus, TelegramLink
from tests.alerts.chat_support import BOT_USERNAME, blocked_by_user, too_many_requests
from tests.alerts.conftest import (
    ZERO_FEE_927,
    label_as_inflow,
    make_subscription,
    record,
)


def new_chat_id() -> int:
    # Pacing keys live in Redis across tests; a fresh chat never waits for an earlier test's.
    return random.randint(10**9, 2 * 10**9)


def link_chat(owner, bot_api, chat_id, capture) -> ChatEndpoint:
    link = telegram_bot.start_link(owner)
    deep_link = telegram_bot.deep_link(link)
    assert deep_link == f"https://t.me/{BOT_USERNAME}?start={link.token}"
    bot_api.user_sends(chat_id, f"/start {link.token}")
    with capture(execute=True):
        result = telegram_bot.poll_once(timeout=0)
    assert result.linked == 1
    return ChatEndpoint.objects.get(owner=owner, telegram_chat_id=chat_id)


@pytest.mark.django_db
def test_deep_link_links_the_chat_and_alerts_arrive_in_order(
    alice, whales, bot_api, django_capture_on_commit_callbacks, settings
):
    settings.SITE_URL = "https://whales.example.org"
    chat_id = new_chat_id()
    chat = link_chat(alice, bot_api, chat_id, django_capture_on_commit_callbacks)
    assert chat.service == "telegram" and chat.active and chat.label == "Alice"
    assert TelegramLink.objects.get().used_at is not None
    [get_me] = bot_api.sent("getMe")
    [poll] = bot_api.sent("getUpdates")
    assert poll.params == {"offset": 0, "timeout": 0, "allowed_updates": ["message"]}
    [welcome] = bot_api.wait_for_sends(1)
    assert welcome.params["chat_id"] == chat_id
    assert welcome.params["text"].startswith("✅ Linked to Whale Watch (alice).")

    subscription = make_subscription(alice, email=False)
    subscription.chats.set([chat])
    tx = whales[ZERO_FEE_927]
    label_as_inflow(tx)
    new = dataclasses.replace(tx, txid="ab" * 32, fee=1_250_000)
    events = [
        record("seen", tx),
        record(
            "replaced",
            new,
            seq=1,
            chain_txid=tx.txid,
            replaced_txid=tx.txid,
            replacing_txid=new.txid,
        ),
        record("confirmed", new, seq=2, block={"height": 277647, "hash": "00" * 32}),
    ]
    for event in events:
        fan_out(event.pk)
        send_delivery(Delivery.objects.get(event=event).pk)

    sends = bot_api.wait_for_sends(4)[1:]
    texts = [call.params["text"] for call in sends]
    assert texts == [
        "<b>🐋 927 BTC moved</b> · #SatoshiFund → #Binance · fee 0 sat/vB, may not confirm soon",
        "<b>🔁 Replaced: 927 BTC moved</b> · #SatoshiFund → #Binance · fee now 5,555.6 sat/vB, "
        "next block",
        "<b>✅ Confirmed: 927 BTC moved</b> · #SatoshiFund → #Binance · in block 277,647 after 1 block",
    ]
    # The exact bytes of the first alert: compact JSON, HTML parse mode, a View button.
    first = sends[0]
    url = f"https://whales.example.org/whales/{tx.txid}/"
    expected = {
        "chat_id": chat_id,
        "text": texts[0],
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": True},
        "reply_markup": {"inline_keyboard": [[{"text": "View", "url": url}]]},
    }
    assert first.body == json.dumps(expected, separators=(",", ":"), ensure_ascii=False).encode()
    statuses = Delivery.objects.order_by("id").values_list("status", "channel", "chat_id")
    assert list(statuses) == [("delivered", "telegram", chat.pk)] * 3


@pytest.mark.django_db
def test_stop_unlinks_and_mute_pauses(alice, whales, bot_api, django_capture_on_commit_callbacks):
    chat_id = new_chat_id()
    chat = link_chat(alice, bot_api, chat_id, django_capture_on_commit_callbacks)
    subscription = make_subscription(alice, email=False)
    subscription.chats.set([chat])

    bot_api.user_sends(chat_id, "/mute 1h")
    with django_capture_on_commit_callbacks(execute=True):
        assert telegram_bot.poll_once(timeout=0).muted == 1
    chat.refresh_from_db()
    assert timedelta(minutes=59) < chat.muted_until - timezone.now() <= timedelta(hours=1)
    assert fan_out(record("seen", whales[ZERO_FEE_927]).pk) == 0  # muted: nothing is queued

    bot_api.user_sends(chat_id, "/stop")
    with django_capture_on_commit_callbacks(execute=True):
        assert telegram_bot.poll_once(timeout=0).unlinked == 1
    chat.refresh_from_db()
    assert not chat.active and chat.disabled_reason == "unlinked with /stop in the chat"
    replies = [c.params["text"] for c in bot_api.wait_for_sends(3)]
    assert replies[1].startswith("Muted until ")
    assert replies[2] == "Unlinked. This chat gets no more whale alerts."
    # Each update was confirmed through the offset, so none is handled twice.
    offsets = [c.params["offset"] for c in bot_api.sent("getUpdates")]
    assert offsets[0] == 0 and offsets[1] > 0 and offsets[2] == offsets[1] + 1
    assert telegram_bot.poll_once(timeout=0).updates == 0


@pytest.mark.django_db
def test_a_used_or_unknown_token_links_nothing(alice, bot_api, django_capture_on_commit_callbacks):
    chat_id = new_chat_id()
    link_chat(alice, bot_api, chat_id, django_capture_on_commit_callbacks)
    token = TelegramLink.objects.get().token
    bot_api.user_sends(chat_id + 1, f"/start {token}")
    bot_api.user_sends(chat_id + 2, "/start not-a-token")
    with django_capture_on_commit_callbacks(execute=True):
        assert telegram_bot.poll_once(timeout=0).linked == 0
    assert ChatEndpoint.objects.count() == 1


@pytest.mark.django_db
def test_429_is_retried_after_retry_after(
    alice, whales, bot_api, django_capture_on_commit_callbacks
):
    chat = link_chat(alice, bot_api, new_chat_id(), django_capture_on_commit_callbacks)
    subscription = make_subscription(alice, email=False)
    subscription.chats.set([chat])
    fan_out(record("seen", whales[ZERO_FEE_927]).pk)
    delivery = Delivery.objects.get()
    bot_api.send_script.append(too_many_requests(42))

    before = timezone.now()
    send_delivery(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_status_code == 429
    assert delivery.last_error == "Telegram 429: Too Many Requests: retry after 42"
    assert delivery.next_attempt_at - before >= timedelta(seconds=42)
    [attempt] = delivery.attempt_set.all()
    assert json.loads(attempt.response_excerpt)["parameters"] == {"retry_after": 42}

    send_delivery(delivery.pk)  # not due yet: nothing is sent
    assert len(bot_api.sent()) == 2
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    send_delivery(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 2
    first, second = bot_api.sent()[1:]
    assert first.body == second.body  # a retry sends the same bytes


@pytest.mark.django_db(transaction=True)
def test_403_blocked_unlinks_the_chat_and_emails_the_owner(alice, whales, bot_api, smtp_server):
    chat_id = new_chat_id()
    link = telegram_bot.start_link(alice)
    bot_api.user_sends(chat_id, f"/start {link.token}")
    telegram_bot.poll_once(timeout=0)
    chat = ChatEndpoint.objects.get()
    subscription = make_subscription(alice, email=False)
    subscription.chats.set([chat])
    fan_out(record("seen", whales[ZERO_FEE_927]).pk)
    delivery = Delivery.objects.get()
    bot_api.send_script.append(blocked_by_user())

    send_delivery(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD
    assert delivery.last_error == "Telegram 403: Forbidden: bot was blocked by the user"
    chat.refresh_from_db()
    assert not chat.active
    assert (
        chat.disabled_reason
        == "unlinked: Telegram answered “Forbidden: bot was blocked by the user”"
    )
    [mail] = smtp_server.wait_for(1)
    assert mail["To"] == "alice@example.org"
    assert mail["Subject"] == "Whale Watch: your Telegram alerts were turned off"
    body = mail.get_content()
    assert "bot was blocked by the user" in body
    assert f"/alerts/chats/{chat.public_id}/" in body
    # Nothing more goes to the unlinked chat.
    assert (
        fan_out(
            record(
                "confirmed", whales[ZERO_FEE_927], seq=1, block={"height": 1, "hash": "ab" * 32}
            ).pk
        )
        == 0
    )


def test_no_view_button_while_the_portal_is_on_a_private_address():
    for url, button in [
        ("http://127.0.0.1:8000/whales/ab/", False),
        ("http://localhost:8000/whales/ab/", False),
        ("http://10.0.0.5/whales/ab/", False),
        ("http://whales.lan.local/whales/ab/", False),
        ("https://whales.example.org/whales/ab/", True),
    ]:
        keyboard = telegram_keyboard(ChatMessage(headline="x", url=url))
        assert (keyboard is not None) is button, url


@pytest.mark.django_db
def test_a_group_upgraded_to_a_supergroup_is_followed(
    alice, whales, bot_api, django_capture_on_commit_callbacks
):
    chat = link_chat(alice, bot_api, new_chat_id(), django_capture_on_commit_callbacks)
    subscription = make_subscription(alice, email=False)
    subscription.chats.set([chat])
    fan_out(record("seen", whales[ZERO_FEE_927]).pk)
    delivery = Delivery.objects.get()
    new_id = -(10**12) - random.randint(1, 10**9)
    bot_api.send_script.append(
        (
            400,
            {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: group chat was upgraded to a supergroup chat",
                "parameters": {"migrate_to_chat_id": new_id},
            },
        )
    )
    send_delivery(delivery.pk)
    delivery.refresh_from_db()
    chat.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and chat.active
    assert chat.telegram_chat_id == new_id

    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    send_delivery(delivery.pk)
    assert bot_api.sent()[-1].params["chat_id"] == new_id
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED


@pytest.mark.alone  # times itself
@pytest.mark.django_db
def test_a_poll_run_ends_inside_a_task_time_limit(bot_api, settings, monkeypatch):
    # The poller is a task like any other (soft limit 12 s, hard 15 s); a long-poll running past
    # them would be killed, so none outlives the run.
    assert tasks.TELEGRAM_POLL_RUN_SECONDS < settings.CELERY_TASK_SOFT_TIME_LIMIT
    assert tasks.TELEGRAM_POLL_LOCK_SECONDS > settings.CELERY_TASK_TIME_LIMIT
    settings.TELEGRAM_POLL_TIMEOUT = 10
    monkeypatch.setattr(tasks, "TELEGRAM_POLL_RUN_SECONDS", 2)
    started = time.monotonic()
    tasks.poll_telegram()
    took = time.monotonic() - started
    timeouts = [call.params["timeout"] for call in bot_api.sent("getUpdates")]
    assert timeouts and max(timeouts) <= 2
    assert 1.5 < took < 4
