"""Discord and Slack incoming webhooks against a local receiver answering as each service does,
and digests per chat channel. The receiver records the exact bytes of every request."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from alerts.delivery import send_delivery
from alerts.fanout import fan_out
from alerts.models import ChatEndpoint, Delivery, DeliveryKind, DeliveryStatus
from alerts.sweeper import requeue_due, sweep
from tests.alerts.conftest import (
    CONSOLIDATION_103,
    ZERO_FEE_133,
    ZERO_FEE_927,
    label_as_inflow,
    make_subscription,
    record,
)

pytestmark = pytest.mark.django_db


def make_hook(owner, service: str, url: str, **fields) -> ChatEndpoint:
    return ChatEndpoint.objects.create(owner=owner, service=service, url=url, **fields)


def one_alert(owner, whales, chat, **subscription_fields) -> Delivery:
    subscription = make_subscription(owner, email=False, **subscription_fields)
    subscription.chats.set([chat])
    label_as_inflow(whales[ZERO_FEE_927])
    fan_out(record("seen", whales[ZERO_FEE_927]).pk)
    return Delivery.objects.get()


def test_a_chat_that_answers_again_gets_its_backlog_within_a_sweep(
    alice, whales, receiver, allow_loopback, django_capture_on_commit_callbacks
):
    chat = make_hook(alice, "slack", receiver.url)
    subscription = make_subscription(alice, email=False)
    subscription.chats.set([chat])
    fan_out(record("seen", whales[CONSOLIDATION_103]).pk)
    fan_out(record("seen", whales[ZERO_FEE_927]).pk)
    missed, new = Delivery.objects.order_by("id")

    receiver.script = [(500, {}, b"down")]
    send_delivery(missed.pk)
    missed.refresh_from_db()
    assert missed.status == DeliveryStatus.FAILED and missed.next_attempt_at > timezone.now()
    chat.refresh_from_db()
    assert chat.consecutive_failures == 1

    receiver.default = (200, {}, b"ok")  # Slack's answer
    send_delivery(new.pk)
    new.refresh_from_db()
    missed.refresh_from_db()
    assert new.status == DeliveryStatus.DELIVERED
    assert missed.status == DeliveryStatus.FAILED and missed.attempts == 1
    assert missed.next_attempt_at <= new.delivered_at  # due now, not at its scheduled try
    chat.refresh_from_db()
    assert chat.consecutive_failures == 0

    with django_capture_on_commit_callbacks():  # queued on the broker after commit: not here
        assert requeue_due(timezone.now()) == (1, 0)
    send_delivery(missed.pk)
    missed.refresh_from_db()
    assert missed.status == DeliveryStatus.DELIVERED and missed.attempts == 2
    first_try, _new, resend = receiver.wait_for(3)
    assert resend.body == first_try.body


def compact(value) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


# --- Discord ----------------------------------------------------------------------------------


def test_discord_gets_content_and_one_embed(alice, whales, receiver, allow_loopback):
    chat = make_hook(alice, "discord", receiver.url)
    receiver.default = (204, {}, b"")  # Discord answers 204 No Content without ?wait=true
    delivery = one_alert(alice, whales, chat)

    send_delivery(delivery.pk)

    [received] = receiver.wait_for(1)
    url = f"{settings.SITE_URL}/whales/{ZERO_FEE_927}/"
    assert received.body == compact(
        {
            "content": "🐋 927 BTC moved · \\#SatoshiFund → \\#Binance · fee 0 sat/vB, "
            f"may not confirm soon · [View](<{url}>)",
            "embeds": [
                {
                    "title": "🐋 927 BTC moved",
                    "description": "\\#SatoshiFund → \\#Binance\nfee 0 sat/vB, may not confirm soon",
                    "color": 0x1E88E5,
                    "url": url,
                }
            ],
            "allowed_mentions": {"parse": []},
        }
    )
    assert received.headers["content-type"] == "application/json"
    assert "webhook-signature" not in received.headers  # Discord does not verify our signature
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.last_status_code == 204
    chat.refresh_from_db()
    assert chat.last_success_at is not None


def test_discord_429_waits_retry_after_from_the_json_body(alice, whales, receiver, allow_loopback):
    chat = make_hook(alice, "discord", receiver.url)
    body = b'{"message": "You are being rate limited.", "retry_after": 64.57, "global": false}'
    receiver.script = [(429, {"Content-Type": "application/json", "Retry-After": "65"}, body)]
    delivery = one_alert(alice, whales, chat)

    before = timezone.now()
    send_delivery(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error == "HTTP 429: You are being rate limited."
    assert delivery.next_attempt_at - before >= timedelta(seconds=64.57)
    chat.refresh_from_db()
    assert chat.active and chat.consecutive_failures == 1


def test_discord_404_disables_the_hook_and_its_page_says_why(
    alice, whales, receiver, allow_loopback, client, django_capture_on_commit_callbacks
):
    chat = make_hook(alice, "discord", receiver.url)
    receiver.script = [
        (
            404,
            {"Content-Type": "application/json"},
            b'{"message": "Unknown Webhook", "code": 10015}',
        )
    ]
    delivery = one_alert(alice, whales, chat)

    with django_capture_on_commit_callbacks(execute=True):
        send_delivery(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD
    chat.refresh_from_db()
    reason = "Discord answered 404 (Unknown Webhook): the webhook was deleted or its URL is wrong"
    assert not chat.active and chat.disabled_reason == reason
    client.force_login(alice)
    page = client.get(reverse("alerts:chat-detail", args=[chat.public_id]))
    assert f"Turned off: {reason}" in page.content.decode()
    # A disabled hook gets no new alerts.
    assert fan_out(record("seen", whales[ZERO_FEE_133]).pk) == 0


# --- Slack ------------------------------------------------------------------------------------


def test_slack_gets_text_and_block_kit(alice, whales, receiver, allow_loopback):
    chat = make_hook(alice, "slack", receiver.url)
    delivery = one_alert(alice, whales, chat)

    send_delivery(delivery.pk)

    [received] = receiver.wait_for(1)
    url = f"{settings.SITE_URL}/whales/{ZERO_FEE_927}/"
    summary = "🐋 927 BTC moved · #SatoshiFund → #Binance · fee 0 sat/vB, may not confirm soon"
    assert received.body == compact(
        {
            "text": summary,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": "*🐋 927 BTC moved*"}},
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": "#SatoshiFund → #Binance\nfee 0 sat/vB, may not confirm soon",
                    },
                },
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": "View"},
                            "url": url,
                        }
                    ],
                },
            ],
            "unfurl_links": False,
        }
    )
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED


def test_slack_429_honours_retry_after(alice, whales, receiver, allow_loopback):
    chat = make_hook(alice, "slack", receiver.url)
    receiver.script = [(429, {"Retry-After": "30"}, b"rate_limited")]
    delivery = one_alert(alice, whales, chat)

    before = timezone.now()
    send_delivery(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error == "HTTP 429: rate_limited"
    assert delivery.next_attempt_at - before >= timedelta(seconds=30)


@pytest.mark.parametrize(
    ("status", "answer"),
    [(404, b"channel_not_found"), (404, b"invalid_token"), (410, b"channel_is_archived")],
)
def test_slack_gone_disables_the_hook(alice, whales, receiver, allow_loopback, status, answer):
    chat = make_hook(alice, "slack", receiver.url)
    receiver.script = [(status, {}, answer)]
    delivery = one_alert(alice, whales, chat)

    send_delivery(delivery.pk)

    chat.refresh_from_db()
    assert not chat.active
    assert chat.disabled_reason == (
        f"Slack answered {status} ({answer.decode()}): "
        "the webhook was removed or its channel is gone"
    )
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD


def test_a_hook_url_must_pass_the_ssrf_guard(alice, client):
    client.force_login(alice)
    response = client.post(
        reverse("alerts:chat-create", args=["discord"]),
        {"url": "http://169.254.169.254/api/webhooks/1/x", "label": ""},
    )
    assert response.status_code == 200
    assert "non-public address" in response.content.decode()
    assert not ChatEndpoint.objects.exists()


# --- digests ----------------------------------------------------------------------------------


def test_quiet_hours_give_one_digest_per_channel(
    alice, whales, receiver, allow_loopback, bot_api, smtp_server
):
    telegram = ChatEndpoint.objects.create(
        owner=alice, service="telegram", telegram_chat_id=random.randint(10**9, 2 * 10**9)
    )
    discord = make_hook(alice, "discord", receiver.url + "?d")
    slack = make_hook(alice, "slack", receiver.url + "?s")
    subscription = make_subscription(alice, quiet_start=time(22, 0), quiet_end=time(7, 0))
    subscription.chats.set([telegram, discord, slack])
    night = datetime(2026, 1, 15, 23, 0, tzinfo=UTC)
    with time_machine.travel(night, tick=False) as traveller:
        for txid in (ZERO_FEE_927, ZERO_FEE_133, CONSOLIDATION_103):
            fan_out(record("seen", whales[txid]).pk)
        assert Delivery.objects.filter(status=DeliveryStatus.HELD).count() == 12
        traveller.move_to(datetime(2026, 1, 16, 7, 0, 30, tzinfo=UTC))
        assert sweep().digests == 4
        digests = Delivery.objects.filter(kind=DeliveryKind.DIGEST)
        assert sorted(digests.values_list("channel", flat=True)) == [
            "discord",
            "email",
            "slack",
            "telegram",
        ]
        for digest in digests:
            send_delivery(digest.pk)
    assert set(digests.values_list("status", flat=True)) == {"delivered"}
    smtp_server.wait_for(1)
    [tg] = bot_api.wait_for_sends(1)
    assert tg.params["text"] == (
        "<b>🐋 3 whale alerts for “alice's whales”</b> · held for quiet hours\n"
        "• 🐋 927 BTC moved · unknown wallet → unknown wallet\n"
        "• 🐋 0.7 BTC moved (of 133.3 BTC) · unknown wallet → unknown wallet\n"
        "• 🐋 100 BTC moved (of 103 BTC) · unknown wallet → unknown wallet"
    )
    assert "reply_markup" not in tg.params
    by_path = {r.path: json.loads(r.body) for r in receiver.wait_for(2)}
    assert by_path["/hook?d"]["embeds"][0]["title"] == "🐋 3 whale alerts for “alice's whales”"
    assert (
        by_path["/hook?s"]["text"]
        == "🐋 3 whale alerts for “alice's whales” · held for quiet hours"
    )


def test_hourly_cap_gives_one_digest_per_channel(alice, whales, receiver, allow_loopback):
    discord = make_hook(alice, "discord", receiver.url + "?d")
    slack = make_hook(alice, "slack", receiver.url + "?s")
    subscription = make_subscription(alice, email=False, max_per_hour=1)
    subscription.chats.set([discord, slack])
    start = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as traveller:
        for txid in (ZERO_FEE_927, ZERO_FEE_133, CONSOLIDATION_103):
            fan_out(record("seen", whales[txid]).pk)
        counts = Delivery.objects.values_list("status", flat=True)
        assert sorted(counts) == ["held"] * 4 + ["pending"] * 2
        traveller.move_to(start + timedelta(hours=1, seconds=1))
        assert sweep().digests == 2
    digests = Delivery.objects.filter(kind=DeliveryKind.DIGEST)
    assert sorted(digests.values_list("channel", "chat_id")) == [
        ("discord", discord.pk),
        ("slack", slack.pk),
    ]
    for digest in digests:
        assert digest.payload["data"]["count"] == 2
        assert digest.payload["data"]["reason"] == "hourly limit"


def test_redeliver_sends_the_same_bytes_again(
    alice, whales, receiver, allow_loopback, client, django_capture_on_commit_callbacks
):
    chat = make_hook(alice, "slack", receiver.url)
    delivery = one_alert(alice, whales, chat)
    send_delivery(delivery.pk)
    client.force_login(alice)
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(f"/alerts/deliveries/{delivery.public_id}/redeliver/", follow=True)
    assert "Queued for redelivery" in response.content.decode()
    assert len(queued) == 1  # the send task, put on the broker after commit
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    send_delivery(delivery.pk)
    first, second = receiver.wait_for(2)
    assert first.body == second.body
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 2

    chat.active = False
    chat.save()
    refused = client.post(f"/alerts/deliveries/{delivery.public_id}/redeliver/", follow=True)
    assert "The chat channel is off" in refused.content.decode()
