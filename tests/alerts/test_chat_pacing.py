"""Pacing through Redis: Telegram's one message a second per chat and its global ceiling."""

from __future__ import annotations

import random
import uuid

import pytest
import time_machine
from django.utils import timezone

from alerts import pacing
from alerts.delivery import send_delivery
from alerts.fanout import fan_out
from alerts.models import ChatEndpoint, Delivery, DeliveryStatus
from tests.alerts.conftest import ZERO_FEE_927, make_subscription, record
from whaleproject.redis_client import get_redis, key


@pytest.fixture
def fresh_windows():
    # Each test owns its chats (random names); the shared window counters are cleared.
    redis = get_redis()
    for name in redis.scan_iter(key("pace", "*", "window") + "*"):
        redis.delete(name)
    yield
    for name in redis.scan_iter(key("pace", "*", "window") + "*"):
        redis.delete(name)


def test_one_message_a_second_per_chat(fresh_windows):
    chat = uuid.uuid4().hex
    with time_machine.travel(1_900_000_000.25, tick=False):
        slots = [pacing.book("telegram", chat, longest=10) for _ in range(4)]
    assert [s.booked for s in slots] == [True] * 4
    assert [round(s.wait, 3) for s in slots] == [0, 1, 2, 3]


def test_global_ceiling_spills_into_the_next_second(fresh_windows, settings):
    settings.TELEGRAM_MESSAGES_PER_SECOND = 25
    with time_machine.travel(1_900_000_100.5, tick=False):
        slots = [pacing.book("telegram", uuid.uuid4().hex, longest=10) for _ in range(60)]
    waits = [round(s.wait, 3) for s in slots]
    assert waits[:25] == [0] * 25  # 25 different chats in the current second
    assert waits[25:50] == [0.5] * 25  # the next 25 start at the next whole second
    assert waits[50:] == [1.5] * 10


def test_a_wait_longer_than_the_sleep_limit_is_not_booked(fresh_windows):
    chat = uuid.uuid4().hex
    with time_machine.travel(1_900_000_200.0, tick=False):
        for _ in range(2):  # now, and in 1 s (slept in the sending thread)
            assert pacing.book("telegram", chat).booked
        refused = pacing.book("telegram", chat)
    assert not refused.booked and refused.wait == pytest.approx(2.0)


@pytest.mark.django_db
def test_a_paced_send_waits_in_the_outbox_without_climbing_the_retry_schedule(
    alice, whales, bot_api, fresh_windows
):
    chat_id = random.randint(10**9, 2 * 10**9)
    chat = ChatEndpoint.objects.create(owner=alice, service="telegram", telegram_chat_id=chat_id)
    subscription = make_subscription(alice, email=False)
    subscription.chats.set([chat])
    fan_out(record("seen", whales[ZERO_FEE_927]).pk)
    delivery = Delivery.objects.get()
    for _ in range(2):  # another worker has this chat's next two seconds
        pacing.book("telegram", str(chat_id))

    before = timezone.now()
    send_delivery(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error.startswith("paced: Telegram's send limit leaves no slot for ")
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 1.5 < wait < 2.5  # the slot's time, not the 5 s floor of the failure schedule
    assert bot_api.sent() == []


def test_hooks_have_their_own_gap_and_no_global_ceiling(fresh_windows):
    hook = uuid.uuid4().hex
    with time_machine.travel(1_900_000_300.0, tick=False):
        discord = [pacing.book("discord", hook, longest=10).wait for _ in range(3)]
        slack = [pacing.book("slack", hook, longest=10).wait for _ in range(3)]
    assert discord == pytest.approx([0, 0.5, 1.0])
    assert slack == pytest.approx([0, 1.0, 2.0])
