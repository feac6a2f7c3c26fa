"""Telegram end to end with a real Celery worker: the beat task links the chat, the ingest-side
recording fans out, the worker sends a whale, its replacement and its confirmation in order."""

from __future__ import annotations

import dataclasses
import random

import pytest

from alerts import tasks
from alerts.models import ChatEndpoint, Delivery, DeliveryStatus, TelegramLink
from tests.alerts.chat_support import BOT_TOKEN
from tests.alerts.conftest import ZERO_FEE_927, label_as_inflow, make_subscription, record
from tests.alerts.test_worker_crash import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_link_then_whale_replacement_confirmation_in_order_then_stop(
    alice, whales, bot_api, worker_factory, monkeypatch, settings
):
    settings.TELEGRAM_POLL_TIMEOUT = 1
    monkeypatch.setattr(tasks, "TELEGRAM_POLL_RUN_SECONDS", 1)
    chat_id = random.randint(10**9, 2 * 10**9)
    link = TelegramLink.objects.create(owner=alice)
    bot_api.user_sends(chat_id, f"/start {link.token}")
    tasks.poll_telegram()  # what beat runs: long-polls getUpdates and handles /start
    chat = ChatEndpoint.objects.get(telegram_chat_id=chat_id)
    subscription = make_subscription(alice, email=False)
    subscription.chats.set([chat])

    worker_factory("alerts-telegram", TELEGRAM_BOT_TOKEN=BOT_TOKEN, TELEGRAM_API_URL=bot_api.url)
    tx = whales[ZERO_FEE_927]
    label_as_inflow(tx)
    new = dataclasses.replace(tx, txid="ab" * 32, fee=1_250_000)
    record("seen", tx)  # each commit fans out and queues the send, as in production
    record("replaced", new, seq=1, chain_txid=tx.txid, replaced_txid=tx.txid)
    record("confirmed", new, seq=2, block={"height": 277647, "hash": "00" * 32})

    sends = bot_api.wait_for_sends(4, timeout=60)
    headlines = [call.params["text"].split("</b>")[0] for call in sends[1:]]
    assert headlines == [
        "<b>🐋 927 BTC moved",
        "<b>🔁 Replaced: 927 BTC moved",
        "<b>✅ Confirmed: 927 BTC moved",
    ]
    wait_until(
        lambda: Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 3,
        what="three delivered rows",
    )

    bot_api.user_sends(chat_id, "/stop")
    tasks.poll_telegram()
    chat.refresh_from_db()
    assert not chat.active
    assert bot_api.wait_for_sends(5)[-1].params["text"].startswith("Unlinked.")
