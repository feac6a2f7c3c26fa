"""The sweep every few seconds (celery beat → alerts.sweep_deliveries,
WHALE_ALERT_SWEEP_SECONDS). Three jobs:

1. catch up fan-outs that never ran (an event committed, then its on-commit fan-out was lost);
2. release held alerts whose quiet hours or hourly window ended: one alone goes as itself,
   several go as one digest;
3. queue sends that are due but not on the broker (every retry waits in the database only),
   sends queued long ago but never taken (the message died with a worker) and sends stranded in
   "sending" by a worker that died mid-try, all after WHALE_DELIVERY_STRANDED_SECONDS.

Rows are taken with select_for_update(skip_locked=True), so two sweepers (or a sweeper and a
worker) never fight over a row, and the send itself is claimed again by the task. What the sweep
queues is backlog (PRIORITY_BACKLOG): workers take new alerts first.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from alerts import payloads
from alerts.delivery import MAX_ATTEMPTS, enqueue_on_commit, stranded_after
from alerts.fanout import fan_out
from alerts.models import (
    ALERT_KINDS,
    AttemptOutcome,
    Delivery,
    DeliveryAttempt,
    DeliveryKind,
    DeliveryStatus,
)
from detection.models import WhaleEvent
from whaleproject.celery import PRIORITY_BACKLOG

log = logging.getLogger(__name__)

BATCH = 1000
# Events older than this are not fanned out late: an alert hours after the fact misleads.
CATCH_UP_WINDOW = timedelta(hours=1)
# Give the normal on-commit fan-out this long before the sweeper steps in (a worker killed
# between the commit and the fan-out): seconds, so such an alert is late by seconds.
CATCH_UP_GRACE = timedelta(seconds=10)


@dataclass
class SweepResult:
    fanned_out: int = 0
    released: int = 0
    digests: int = 0
    requeued: int = 0
    stranded: int = 0


def sweep(now: datetime | None = None, *, queue_waiting: int | None = 0) -> SweepResult:
    """`queue_waiting`: tasks waiting in the broker's queue (None: unknown)."""
    now = now or timezone.now()
    result = SweepResult()
    result.fanned_out = catch_up_fan_outs(now)
    result.released, result.digests = release_held(now)
    result.requeued, result.stranded = requeue_due(now, queue_waiting=queue_waiting)
    return result


def catch_up_fan_outs(now: datetime) -> int:
    missed = WhaleEvent.everything.filter(
        created_at__gt=now - CATCH_UP_WINDOW,
        created_at__lt=now - CATCH_UP_GRACE,
        kind__in=ALERT_KINDS,
        alert_fanout__isnull=True,
    ).values_list("pk", flat=True)[:BATCH]
    count = 0
    for event_id in missed:
        log.warning("event %s had no fan-out; fanning out now", event_id)
        count += fan_out(event_id)
    return count


def release_held(now: datetime) -> tuple[int, int]:
    """Send what quiet hours or the hourly limit held back. Returns (released, digests)."""
    released = digests = 0
    with transaction.atomic():
        due = list(
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=DeliveryStatus.HELD, next_attempt_at__lte=now)
            .select_related("subscription", "event__alert_fanout")
            .order_by("created_at", "id")[:BATCH]
        )
        groups: dict[tuple, list[Delivery]] = defaultdict(list)
        for row in due:
            groups[
                (row.subscription_id, row.channel, row.endpoint_id, row.chat_id, row.owner_id)
            ].append(row)
        ready: list[int] = []
        for rows in groups.values():
            if len(rows) == 1:
                Delivery.objects.filter(pk=rows[0].pk).update(
                    status=DeliveryStatus.PENDING, next_attempt_at=now, enqueued_at=now
                )
                ready.append(rows[0].pk)
                released += 1
                continue
            first = rows[0]
            reason = (
                "quiet hours"
                if first.subscription and first.subscription.quiet_start
                else "hourly limit"
            )
            digest = Delivery.objects.create(
                kind=DeliveryKind.DIGEST,
                message_id=f"digest_{uuid.uuid4().hex}",
                owner_id=first.owner_id,
                subscription=first.subscription,
                channel=first.channel,
                endpoint_id=first.endpoint_id,
                chat_id=first.chat_id,
                payload=payloads.digest_payload([r.body for r in rows], first.subscription, reason),
                status=DeliveryStatus.PENDING,
                next_attempt_at=now,
                enqueued_at=now,
                created_at=now,
            )
            Delivery.objects.filter(pk__in=[r.pk for r in rows]).update(
                status=DeliveryStatus.DIGESTED, digest=digest, next_attempt_at=None
            )
            ready.append(digest.pk)
            released += len(rows)
            digests += 1
        enqueue_on_commit(ready, priority=PRIORITY_BACKLOG)
    return released, digests


def requeue_due(now: datetime, *, queue_waiting: int | None = 0) -> tuple[int, int]:
    """Queue due sends that are not on the broker. Returns (queued, of which stranded).

    A send queued long ago and never taken counts as lost (its message died with a worker) only
    while no task waits in the broker's queue: during a backlog it is most likely still queued,
    and queueing it again every sweep would feed the backlog.
    """
    stale = now - stranded_after()
    not_on_broker = Q(enqueued_at__isnull=True)
    if not queue_waiting:
        not_on_broker |= Q(enqueued_at__lt=stale)
    with transaction.atomic():
        rows = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(
                Q(
                    status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED],
                    next_attempt_at__lte=now,
                )
                & not_on_broker
                | Q(status=DeliveryStatus.SENDING, sending_since__lt=stale)
            )
            .order_by("next_attempt_at", "id")
            .only("pk", "status", "attempts")[:BATCH]
        )
        stranded = [r.pk for r in rows if r.status == DeliveryStatus.SENDING]
        if stranded:
            log.warning("%s delivery(ies) stranded in sending; sending again", len(stranded))
            DeliveryAttempt.objects.filter(
                delivery_id__in=stranded, outcome=AttemptOutcome.IN_PROGRESS
            ).update(
                outcome=AttemptOutcome.INTERRUPTED,
                error="the worker stopped during this try (no answer recorded)",
            )
            exhausted = [r.pk for r in rows if r.pk in stranded and r.attempts >= MAX_ATTEMPTS]
            Delivery.objects.filter(pk__in=exhausted).update(
                status=DeliveryStatus.DEAD,
                sending_since=None,
                next_attempt_at=None,
                last_error="the worker stopped during the last try",
            )
            Delivery.objects.filter(pk__in=set(stranded) - set(exhausted)).update(
                status=DeliveryStatus.PENDING,
                sending_since=None,
                next_attempt_at=now,
                last_error="the worker stopped during the last try; sending again",
            )
            rows = [r for r in rows if r.pk not in exhausted]
        ids = [r.pk for r in rows]
        Delivery.objects.filter(pk__in=ids).update(enqueued_at=now)
        enqueue_on_commit(ids, priority=PRIORITY_BACKLOG)
    return len(ids), len(stranded)
