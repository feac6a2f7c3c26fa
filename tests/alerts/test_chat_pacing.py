"""Pacing through Redis: Telegram's one message a second per chat and its global ceiling."""

from __future__ import annotations

import uuid

import pytest
import time_machine

from alerts import pacing
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
        slots = [pacing.book("telegram", chat) for _ in range(4)]
    assert [s.booked for s in slots] == [True] * 4
    assert [round(s.wait, 3) for s in slots] == [0, 1, 2, 3]


def test_global_ceiling_spills_into_the_next_second(fresh_windows, settings):
    settings.TELEGRAM_MESSAGES_PER_SECOND = 25
    with time_machine.travel(1_900_000_100.5, tick=False):
        slots = [pacing.book("telegram", uuid.uuid4().hex) for _ in range(60)]
    waits = [round(s.wait, 3) for s in slots]
    assert waits[:25] == [0] * 25  # 25 different chats in the current second
    assert waits[25:50] == [0.5] * 25  # the next 25 start at the next whole second
    assert waits[50:] == [1.5] * 10


def test_a_wait_longer_than_the_sleep_limit_is_not_booked(fresh_windows):
    chat = uuid.uuid4().hex
    with time_machine.travel(1_900_000_200.0, tick=False):
        for _ in range(6):
            assert pacing.book("telegram", chat).booked
        refused = pacing.book("telegram", chat)
    assert not refused.booked and refused.wait == pytest.approx(6.0)


def test_hooks_have_their_own_gap_and_no_global_ceiling(fresh_windows):
    hook = uuid.uuid4().hex
    with time_machine.travel(1_900_000_300.0, tick=False):
        discord = [pacing.book("discord", hook).wait for _ in range(3)]
        slack = [pacing.book("slack", hook).wait for _ in range(3)]
    assert discord == pytest.approx([0, 0.5, 1.0])
    assert slack == pytest.approx([0, 1.0, 2.0])
