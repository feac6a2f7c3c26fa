"""Pages and REST API of chat channels: Connect Telegram, hooks, tick boxes, test messages."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from alerts.models import ChatEndpoint, Delivery, Subscription, TelegramLink
from tests.alerts.chat_support import BOT_USERNAME
from tests.alerts.conftest import make_subscription
from tests.alerts.test_pages import assert_every_input_is_labelled

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def api(alice):
    client = APIClient()
    client.force_login(alice)
    return client


def test_connect_telegram_gives_a_one_time_deep_link(alice_client, bot_api):
    index = alice_client.get("/alerts/").content.decode()
    # The page title is words only, and the chats section stands once, in the page body.
    assert "<title>Alerts · Whale Watch</title>" in index
    assert index.count('id="chats-heading"') == 1
    assert "Connect Telegram" in index
    page = alice_client.post("/alerts/telegram/connect/").content.decode()
    link = TelegramLink.objects.get()
    assert f"https://t.me/{BOT_USERNAME}?start={link.token}" in page
    alice_client.post("/alerts/telegram/connect/")
    assert TelegramLink.objects.get().token != link.token  # the older link stops working


def test_without_a_bot_token_there_is_no_telegram_button(alice_client, settings):
    settings.TELEGRAM_BOT_TOKEN = ""
    assert "Connect Telegram" not in alice_client.get("/alerts/").content.decode()
    response = alice_client.post("/alerts/telegram/connect/", follow=True)
    assert "Telegram is not available" in response.content.decode()
    assert not TelegramLink.objects.exists()


def test_hook_pages_tick_boxes_and_test_message(
    alice_client, alice, receiver, allow_loopback, settings
):
    # Ten paced test sends take about ten seconds: a per-minute window could end mid-test and
    # let the eleventh through, so the same allowance is counted per hour here.
    settings.WHALE_SEND_RATE = "10/h"
    assert_every_input_is_labelled(alice_client.get("/alerts/chats/new/slack/").content.decode())
    response = alice_client.post(
        "/alerts/chats/new/slack/", {"url": receiver.url, "label": "#whales"}
    )
    chat = ChatEndpoint.objects.get(owner=alice)
    assert chat.service == "slack" and chat.label == "#whales"
    assert response["Location"] == f"/alerts/chats/{chat.public_id}/"
    page = alice_client.get(response["Location"]).content.decode()
    assert "Send test message" in page
    assert_every_input_is_labelled(page)

    form = alice_client.get("/alerts/subscriptions/new/").content.decode()
    assert f'value="{chat.pk}"' in form and "Slack: #whales" in form
    alice_client.post(
        "/alerts/subscriptions/new/",
        {
            "name": "Slack only",
            "min_btc": "100",
            "kinds": ["seen"],
            "chats": [chat.pk],
        },
    )
    subscription = Subscription.objects.get(name="Slack only")
    assert list(subscription.chats.all()) == [chat] and not subscription.email

    cache.clear()  # the test-send throttle counts per user in the cache
    tested = alice_client.post(f"/alerts/chats/{chat.public_id}/test/", follow=True)
    assert "Test message delivered: 200" in tested.content.decode()
    body = json.loads(receiver.wait_for(1)[0].body)
    assert body["text"].startswith("🧪 Test message from Whale Watch: 512.3 BTC moved")
    test_delivery = Delivery.objects.get(kind="test")
    assert (test_delivery.channel, test_delivery.chat) == ("slack", chat)
    for _ in range(9):
        alice_client.post(f"/alerts/chats/{chat.public_id}/test/")
    throttled = alice_client.post(f"/alerts/chats/{chat.public_id}/test/")
    assert throttled.status_code == 429
    assert Delivery.objects.filter(kind="test").count() == 10


def test_other_users_chats_are_404(alice_client, bob):
    chat = ChatEndpoint.objects.create(owner=bob, service="discord", url="https://discord.com/x")
    assert alice_client.get(f"/alerts/chats/{chat.public_id}/").status_code == 404
    assert alice_client.post(f"/alerts/chats/{chat.public_id}/test/").status_code == 404


def test_chats_api(api, alice, receiver, allow_loopback, bot_api):
    refused = api.post(
        "/api/v1/chats/", {"service": "discord", "url": "http://10.1.2.3/x"}, format="json"
    )
    assert refused.status_code == 400 and "url" in refused.json()["error"]["fields"]
    created = api.post(
        "/api/v1/chats/",
        {"service": "discord", "url": receiver.url, "label": "trading desk"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    chat_id = created.json()["id"]
    assert "url" not in created.json()  # the hook URL is a secret: written, never read back

    subscription = api.post(
        "/api/v1/subscriptions/",
        {"name": "Desk", "min_btc": "100", "email": False, "chats": [chat_id]},
        format="json",
    )
    assert subscription.status_code == 201, subscription.json()
    assert subscription.json()["chats"] == [chat_id]
    none = api.post(
        "/api/v1/subscriptions/",
        {"name": "Nowhere", "min_btc": "100", "email": False},
        format="json",
    )
    assert none.status_code == 400

    receiver.default = (204, {}, b"")
    tested = api.post(f"/api/v1/chats/{chat_id}/test/")
    assert tested.status_code == 201 and tested.json()["status"] == "delivered"
    assert tested.json()["channel"] == "discord" and tested.json()["chat"] == chat_id
    listed = api.get("/api/v1/deliveries/?channel=discord").json()
    assert [d["chat"] for d in listed["results"]] == [chat_id]

    link = api.post("/api/v1/chats/telegram-link/")
    assert link.status_code == 201
    assert link.json()["deep_link"].startswith(f"https://t.me/{BOT_USERNAME}?start=")

    off = api.patch(f"/api/v1/chats/{chat_id}/", {"active": False}, format="json")
    assert off.json()["active"] is False
    assert off.json()["disabled_reason"] == "turned off by its owner"
    assert api.delete(f"/api/v1/chats/{chat_id}/").status_code == 204
    make_subscription(alice)  # a subscription without chats still lists fine
    assert api.get("/api/v1/subscriptions/").status_code == 200
