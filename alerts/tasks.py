"""Celery tasks of the alerts app. Thin: the work is in alerts.delivery and alerts.sweeper.

The send tasks do not retry themselves (a Celery retry is a countdown task, which the broker holds
unacknowledged until it is due). When the database is away the rows stay as they were, due
(or "sending" and soon stranded), and the sweeper, every few seconds, queues them again.
"""

from __future__ import annotations

import logging

from celery import shared_task

from whaleproject.health import celery_queue_depth

log = logging.getLogger(__name__)


@shared_task(name="alerts.send_delivery", ignore_result=True)
def send_delivery(delivery_id: int) -> None:
    from alerts.delivery import send_delivery as send

    send(delivery_id)


@shared_task(name="alerts.send_deliveries", ignore_result=True)
def send_deliveries(delivery_ids: list[int]) -> None:
    """A small batch, sent in parallel; a repeated batch skips what was already sent."""
    from alerts.delivery import send_deliveries as send

    send(delivery_ids)


@shared_task(name="alerts.sweep_deliveries", ignore_result=True)
def sweep_deliveries() -> None:
    from alerts.sweeper import sweep

    depth = celery_queue_depth()
    result = sweep(queue_waiting=depth.waiting if depth is not None else None)
    if result.fanned_out or result.released or result.requeued:
        log.info("alert sweep: %s", result)
