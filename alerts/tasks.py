"""Celery tasks of the alerts app. Thin: the work is in alerts.delivery and alerts.sweeper."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.db import InterfaceError, OperationalError

from alerts import delivery, sweeper, telegram_api, telegram_bot
from whaleproject.redis_client import get_redis, key

log = logging.getLogger(__name__)


@shared_task(
    name="alerts.send_delivery",
    ignore_result=True,
    # The database is away: the row is untouched (or still claimable once stranded), so
    # retrying the task is safe. Backoff stays far below the broker's visibility timeout.
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=300,
    max_retries=20,
)
def send_delivery(delivery_id: int) -> None:
    delivery.send_delivery(delivery_id)


@shared_task(
    name="alerts.send_deliveries",
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=300,
    max_retries=20,
)
def send_deliveries(delivery_ids: list[int]) -> None:
    """A small batch, sent in parallel; a retried batch skips what was already sent."""
    delivery.send_deliveries(delivery_ids)


@shared_task(name="alerts.sweep_deliveries", ignore_result=True)
def sweep_deliveries() -> None:
    result = sweeper.sweep()
    if result.fanned_out or result.released or result.requeued:
        log.info("alert sweep: %s", result)


# One poller at a time: Telegram answers 409 Conflict to a second concurrent getUpdates.
TELEGRAM_POLL_LOCK_SECONDS = 120
# Each beat run long-polls for about this long, so one run follows the other.
TELEGRAM_POLL_RUN_SECONDS = 50


@shared_task(name="alerts.poll_telegram", ignore_result=True)
def poll_telegram() -> None:
    if not telegram_api.configured():
        return
    lock = get_redis().lock(key("alerts", "telegram-poll"), timeout=TELEGRAM_POLL_LOCK_SECONDS)
    if not lock.acquire(blocking=False):
        return
    try:
        ends = time.monotonic() + TELEGRAM_POLL_RUN_SECONDS
        while time.monotonic() < ends:
            try:
                telegram_bot.poll_once()
            except telegram_api.BotApiError as exc:
                log.warning("Telegram poll: %s", exc)
                return
    finally:
        lock.release()
