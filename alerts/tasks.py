"""Celery tasks of the alerts app. Thin: the work is in alerts.delivery and alerts.sweeper.

The send tasks do not retry themselves (a Celery retry is a countdown task, which the broker holds
unacknowledged until it is due). When the database is away the rows stay as they were, due
(or "sending" and soon stranded), and the sweeper, every few seconds, queues them again.
"""

from __future__ import annotations

import logging
import time

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from alerts import delivery, sweeper, telegram_api, telegram_bot
from whaleproject.health import celery_queue_depth
from whaleproject.redis_client import get_redis, key

log = logging.getLogger(__name__)


@shared_task(name="alerts.send_delivery", ignore_result=True)
def send_delivery(delivery_id: int) -> None:
    delivery.send_delivery(delivery_id)


@shared_task(name="alerts.send_deliveries", ignore_result=True)
def send_deliveries(delivery_ids: list[int]) -> None:
    """A small batch, sent in parallel; a repeated batch skips what was already sent."""
    delivery.send_deliveries(delivery_ids)


@shared_task(name="alerts.sweep_deliveries", ignore_result=True)
def sweep_deliveries() -> None:
    depth = celery_queue_depth()
    result = sweeper.sweep(queue_waiting=depth.waiting if depth is not None else None)
    if result.fanned_out or result.released or result.requeued:
        log.info("alert sweep: %s", result)


# One poller at a time: Telegram answers 409 Conflict to a second concurrent getUpdates. The lock
# outlasts a task's hard time limit, so it lapses only once its holder is surely gone.
TELEGRAM_POLL_LOCK_SECONDS = 30
# Each beat run long-polls for about this long, inside a task's soft time limit (12 s, like every
# task: docs/RELIABILITY.md "Crash recovery"), so one run follows the other.
TELEGRAM_POLL_RUN_SECONDS = 10


@shared_task(name="alerts.poll_telegram", ignore_result=True)
def poll_telegram() -> None:
    if not telegram_api.configured():
        return
    lock = get_redis().lock(key("alerts", "telegram-poll"), timeout=TELEGRAM_POLL_LOCK_SECONDS)
    if not lock.acquire(blocking=False):
        return
    try:
        ends = time.monotonic() + TELEGRAM_POLL_RUN_SECONDS
        while (left := ends - time.monotonic()) > 0:
            # No long-poll outlives the run: a command is answered by the next run at the latest.
            telegram_bot.poll_once(timeout=min(settings.TELEGRAM_POLL_TIMEOUT, int(left)))
    except telegram_api.BotApiError as exc:
        log.warning("Telegram poll: %s", exc)
    except SoftTimeLimitExceeded:
        # The Bot API did not answer within its long-poll; the update offset is in the database.
        log.warning("Telegram poll stopped at the time limit; the next run goes on")
    finally:
        lock.release()
