"""Sending one delivery: claim it, try once, record the try, decide what happens next.

Retries follow a fixed schedule with jitter. Every wait is only a next_attempt_at in the
database, which the sweeper (every few seconds) turns into a send task when it is due: no task is
ever a Celery countdown, because the Redis broker holds a countdown task unacknowledged until it
is due, and a task held by a worker that dies comes back only after the visibility timeout, which
must therefore be short (docs/RELIABILITY.md). The claim in Delivery.objects.claimable makes a
duplicate task harmless.
"""

from __future__ import annotations

import functools
import logging
import random
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from alerts.models import (
    CHAT_CHANNELS,
    AttemptOutcome,
    Channel,
    ChatEndpoint,
    Delivery,
    DeliveryAttempt,
    DeliveryKind,
    DeliveryStatus,
    WebhookEndpoint,
    address_confirmed,
)
from alerts.payloads import sample_payload
from alerts.transports import Outcome, transport_for
from whaleproject.celery import PRIORITY_STREAM, app

log = logging.getLogger(__name__)

# Waits after the 1st, 2nd, ... failed try (about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h);
# after the last one the delivery is dead. Eight tries over about 28 hours.
RETRY_DELAYS = (5, 300, 1800, 7200, 18000, 36000, 36000)
JITTER = 0.1
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# Deliveries per send task when many go out at once: Celery's per-task cost (a broker round trip
# each way) is paid once per batch. Small, so one slow receiver delays few others; endpoints that
# are failing are sent one per task anyway (see fan_out).
SEND_BATCH = 10
# The send tasks of alerts.tasks, by name.
SEND_ONE = "alerts.send_delivery"
SEND_BATCH_TASK = "alerts.send_deliveries"
# The longest wait for a paced send's slot (it waits in the outbox, not on the broker).
MAX_PACED_WAIT = 300
# A receiver may ask for a pause (Retry-After) but not hold a delivery for ever.
MAX_RETRY_AFTER = 24 * 3600
# An endpoint that has failed without a single success for this long is disabled.
FAILING_TOO_LONG = timedelta(hours=24)


def stranded_after() -> timedelta:
    """A send still "sending" after this long belongs to a worker that died."""
    return timedelta(seconds=settings.WHALE_DELIVERY_STRANDED_SECONDS)


def retry_delay(attempts_made: int, retry_after: float | None = None) -> float | None:
    """Seconds to wait before the next try, or None when the schedule is used up."""
    if attempts_made < 1 or attempts_made > len(RETRY_DELAYS):
        return None
    delay = RETRY_DELAYS[attempts_made - 1] * random.uniform(1 - JITTER, 1 + JITTER)
    if retry_after:
        delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER))
    return delay


def enqueue(delivery_ids, batch_size: int = SEND_BATCH, priority: int = PRIORITY_STREAM) -> None:
    """Put send tasks on the broker, to run now. Call it from transaction.on_commit, never
    inside one. Sends that must wait are not enqueued: their next_attempt_at is the schedule.
    `priority`: PRIORITY_BACKLOG for bursts and backlogs (whaleproject.celery)."""
    ids = list(delivery_ids)
    if not ids:
        return
    with app.producer_or_acquire() as producer:
        for start in range(0, len(ids), batch_size):
            batch = ids[start : start + batch_size]
            # By task name: alerts.tasks imports this module, not the other way round.
            if len(batch) == 1:
                app.send_task(SEND_ONE, tuple(batch), producer=producer, priority=priority)
            else:
                app.send_task(SEND_BATCH_TASK, (batch,), producer=producer, priority=priority)


def enqueue_on_commit(
    delivery_ids, batch_size: int = SEND_BATCH, priority: int = PRIORITY_STREAM
) -> None:
    ids = list(delivery_ids)
    if ids:
        transaction.on_commit(lambda: enqueue(ids, batch_size, priority))


def send_delivery(delivery_id: int) -> Outcome | None:
    """Claim and send one delivery. None when another worker has it or it is not due."""
    return send_deliveries([delivery_id]).get(delivery_id)


def send_deliveries(delivery_ids) -> dict[int, Outcome]:
    """Claim what is sendable among `delivery_ids`, send those at once, record every try.

    The database work is done per batch (one claim, then one update for the sends that
    finished together), the sending in parallel threads, so a slow receiver holds up nobody
    else in the batch. Each answer is recorded as soon as it is read, not when the slowest send
    of the batch is over: a worker killed between a receiver's 2xx and its record makes the
    sweeper send that delivery again (same webhook-id, docs/RELIABILITY.md "At least once"),
    and this keeps that moment to the milliseconds of one commit.
    """
    deliveries, attempts = _claim(list(delivery_ids))
    if not deliveries:
        return {}
    if len(deliveries) == 1:
        outcome = _send_one(deliveries[0])
        record(deliveries, attempts, [outcome])
        return {deliveries[0].pk: outcome}
    pool = _senders()
    waiting = {
        pool.submit(_send_one, delivery): (delivery, attempt)
        for delivery, attempt in zip(deliveries, attempts, strict=True)
    }
    outcomes: dict[int, Outcome] = {}
    while waiting:
        done, _ = wait(waiting, return_when=FIRST_COMPLETED)
        finished = [(*waiting.pop(future), future.result()) for future in done]
        record(*zip(*finished, strict=True))
        outcomes.update((delivery.pk, outcome) for delivery, _, outcome in finished)
    return outcomes


@functools.cache
def _senders() -> ThreadPoolExecutor:
    # Threads only wait on sockets; they never touch the database (everything a transport
    # needs was loaded by the claim).
    return ThreadPoolExecutor(max_workers=SEND_BATCH, thread_name_prefix="alerts-send")


def _claim(ids: list[int]) -> tuple[list[Delivery], list[DeliveryAttempt]]:
    now = timezone.now()
    # The claim and the "in progress" tries commit together: a worker that dies after this
    # leaves visible tries, which the sweeper marks interrupted.
    with transaction.atomic():
        deliveries = list(
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .claimable(now=now, stranded_before=now - stranded_after())
            .filter(pk__in=ids)
            .select_related(
                "owner__profile", "endpoint", "chat", "subscription", "event__alert_fanout"
            )
            .order_by("pk")
        )
        if not deliveries:
            return [], []
        Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(
            status=DeliveryStatus.SENDING,
            sending_since=now,
            attempts=F("attempts") + 1,
            enqueued_at=None,
        )
        for delivery in deliveries:
            delivery.attempts += 1
            delivery.status, delivery.sending_since = DeliveryStatus.SENDING, now
        retried = [d.pk for d in deliveries if d.attempts > 1]
        if retried:
            _mark_interrupted(retried)
        attempts = DeliveryAttempt.objects.bulk_create(
            [DeliveryAttempt(delivery=d, number=d.attempts, started_at=now) for d in deliveries]
        )
    return deliveries, attempts


def _send_one(delivery: Delivery) -> Outcome:
    refusal = _refusal(delivery)
    if refusal:
        return Outcome(ok=False, error=refusal, retryable=False)
    try:
        return transport_for(delivery).send()
    except Exception as exc:  # a bug must not strand the row in "sending"
        log.exception("transport crashed on delivery %s", delivery.public_id)
        return Outcome(ok=False, error=f"internal error: {exc.__class__.__name__}")


def _mark_interrupted(delivery_ids: list[int]) -> None:
    DeliveryAttempt.objects.filter(
        delivery_id__in=delivery_ids, outcome=AttemptOutcome.IN_PROGRESS
    ).update(outcome=AttemptOutcome.INTERRUPTED, error="the worker stopped during this try")


def _refusal(delivery: Delivery) -> str:
    """Why this delivery must not be sent any more (the user changed something), or ""."""
    if delivery.channel == Channel.EMAIL and not address_confirmed(delivery.owner):
        return "not sent: the e-mail address is not confirmed yet"
    if delivery.kind == DeliveryKind.TEST:
        return ""
    if delivery.kind == DeliveryKind.ALERT or delivery.kind == DeliveryKind.DIGEST:
        subscription = delivery.subscription
        if subscription is None:
            return "not sent: the subscription was deleted"
        if not subscription.active:
            return "not sent: the subscription is paused"
    if delivery.channel == Channel.WEBHOOK and not delivery.endpoint.active:
        reason = delivery.endpoint.disabled_reason or "disabled by its owner"
        return f"not sent: the endpoint is disabled ({reason})"[:500]
    if delivery.channel in CHAT_CHANNELS:
        chat = delivery.chat
        if not chat.active:
            reason = chat.disabled_reason or "disabled by its owner"
            return f"not sent: the {chat.get_service_display()} channel is off ({reason})"[:500]
        if chat.is_muted():
            return f"not sent: muted until {chat.muted_until:%Y-%m-%d %H:%M} UTC"
    return ""


DELIVERY_FIELDS = [
    "status",
    "delivered_at",
    "next_attempt_at",
    "sending_since",
    "last_status_code",
    "last_error",
    "last_duration_ms",
    "enqueued_at",
]
ATTEMPT_FIELDS = [
    "outcome",
    "status_code",
    "error",
    "duration_ms",
    "response_excerpt",
    "next_attempt_at",
]


def record(deliveries, attempts, outcomes) -> None:
    """Write the tries and the deliveries' new states (a next try is its next_attempt_at)."""
    now = timezone.now()
    for delivery, attempt, outcome in zip(deliveries, attempts, outcomes, strict=True):
        _apply_outcome(delivery, attempt, outcome, now)
        log.info(
            "delivery %s %s attempt %s: %s %s",
            delivery.public_id,
            delivery.channel,
            attempt.number,
            delivery.status,
            outcome.status_code or outcome.error,
        )
    with transaction.atomic():
        _save_rows(attempts, ATTEMPT_FIELDS)
        _save_rows(deliveries, DELIVERY_FIELDS)
        _endpoints_bookkeeping(deliveries, outcomes, now)
        _chats_bookkeeping(deliveries, outcomes, now)


def _save_rows(rows, field_names: list[str]) -> None:
    """UPDATE each row's fields with one executemany (pipelined by psycopg).

    QuerySet.bulk_update builds a CASE expression per field and row; at a few hundred
    deliveries a second that compilation alone cost more CPU than the sending.
    """
    if not rows:
        return
    meta = rows[0]._meta
    fields = [meta.get_field(name) for name in field_names]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    # Only names from the model are interpolated (quoted); every value is a parameter.
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608
    params = [
        [field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields]
        + [row.pk]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _apply_outcome(delivery, attempt, outcome: Outcome, now: datetime) -> None:
    """Set the fields of one delivery and its try."""
    duration_ms = None if outcome.duration is None else round(outcome.duration * 1000)
    delay = None
    if outcome.ok:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    else:
        if outcome.paced and outcome.retry_after is not None:
            delay = min(outcome.retry_after, MAX_PACED_WAIT)
        elif outcome.retryable and delivery.kind != DeliveryKind.TEST:
            delay = retry_delay(delivery.attempts, outcome.retry_after)
        if delay is None:
            delivery.status = DeliveryStatus.DEAD
            delivery.next_attempt_at = None
        else:
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = now + timedelta(seconds=delay)
    delivery.sending_since = None
    delivery.last_status_code = outcome.status_code
    delivery.last_error = outcome.error[:500]
    delivery.last_duration_ms = duration_ms
    # Not on the broker: the sweeper queues it once next_attempt_at has come.
    delivery.enqueued_at = None

    attempt.outcome = AttemptOutcome.DELIVERED if outcome.ok else AttemptOutcome.FAILED
    attempt.status_code = outcome.status_code
    attempt.error = outcome.error[:500]
    attempt.duration_ms = duration_ms
    attempt.response_excerpt = outcome.response_excerpt[:1000]
    attempt.next_attempt_at = delivery.next_attempt_at


def _endpoints_bookkeeping(deliveries, outcomes, now: datetime) -> None:
    refresh = []
    healed = []
    for delivery, outcome in zip(deliveries, outcomes, strict=True):
        if delivery.channel != Channel.WEBHOOK or delivery.kind == DeliveryKind.TEST:
            continue
        endpoint = delivery.endpoint
        if not outcome.ok:
            _endpoint_failed(endpoint, outcome, now)
            continue
        healthy = not endpoint.consecutive_failures and endpoint.failing_since is None
        recent = endpoint.last_success_at and now - endpoint.last_success_at < timedelta(minutes=1)
        if not (healthy and recent):  # a busy healthy endpoint is not rewritten every send
            refresh.append(endpoint.pk)
        if not healthy:
            healed.append(endpoint.pk)
    if refresh:
        WebhookEndpoint.objects.filter(pk__in=refresh).update(
            consecutive_failures=0, failing_since=None, last_success_at=now
        )
    if healed:
        send_backlog_now(now, endpoint_id__in=healed)


def send_backlog_now(now: datetime, **target) -> int:
    """A receiver that answers again gets what it missed now, not at each delivery's next
    scheduled try (up to 5 min, 30 min, ... away): the waiting retries become due, and the
    sweeper queues them within a sweep, behind new alerts (PRIORITY_BACKLOG). Each such try
    counts as one of the schedule's eight."""
    return Delivery.objects.filter(
        status=DeliveryStatus.FAILED, next_attempt_at__gt=now, **target
    ).update(next_attempt_at=now)


def _endpoint_failed(endpoint: WebhookEndpoint, outcome: Outcome, now: datetime) -> None:
    endpoints = WebhookEndpoint.objects.filter(pk=endpoint.pk)
    endpoints.update(
        consecutive_failures=F("consecutive_failures") + 1,
        failing_since=Coalesce("failing_since", now),
        last_failure_at=now,
    )
    if outcome.disable_endpoint:
        disable_endpoint(endpoint, outcome.disable_endpoint)
        return
    failing_since = endpoints.values_list("failing_since", flat=True).first()
    if failing_since is not None and now - failing_since > FAILING_TOO_LONG:
        disable_endpoint(endpoint, f"failing for more than 24 hours (last error: {outcome.error})")


def disable_endpoint(endpoint: WebhookEndpoint, reason: str) -> bool:
    """Stop an endpoint, give up its waiting deliveries and tell its owner (once)."""
    reason = reason[:500]
    changed = WebhookEndpoint.objects.filter(pk=endpoint.pk, active=True).update(
        active=False, disabled_reason=reason
    )
    if not changed:
        return False
    _abandon_waiting(f"the endpoint was disabled ({reason})", endpoint=endpoint)
    endpoint.active, endpoint.disabled_reason = False, reason
    transaction.on_commit(lambda: _tell_owner_endpoint_disabled(endpoint.pk))
    return True


def _abandon_waiting(why: str, **target) -> None:
    """Give up the deliveries still waiting for a place that was turned off."""
    Delivery.objects.filter(
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED, DeliveryStatus.HELD], **target
    ).update(status=DeliveryStatus.DEAD, next_attempt_at=None, last_error=f"not sent: {why}"[:500])


def _tell_owner_endpoint_disabled(endpoint_id: int) -> None:
    endpoint = WebhookEndpoint.objects.select_related("owner").get(pk=endpoint_id)
    if not endpoint.owner.email:
        return
    context = {
        "endpoint": endpoint,
        "endpoint_url": settings.SITE_URL
        + reverse("alerts:webhook-detail", args=[endpoint.public_id]),
    }
    try:
        send_mail(
            subject="Whale Watch: your webhook endpoint was disabled",
            message=render_to_string("alerts/email/endpoint_disabled.txt", context),
            from_email=None,
            recipient_list=[endpoint.owner.email],
        )
    except Exception:
        # The endpoint page shows the reason too; a lost notice must not fail the delivery.
        log.exception("could not e-mail the owner of endpoint %s", endpoint.public_id)


def _chats_bookkeeping(deliveries, outcomes, now: datetime) -> None:
    refresh = []
    healed = []
    for delivery, outcome in zip(deliveries, outcomes, strict=True):
        if delivery.channel not in CHAT_CHANNELS:
            continue
        chat = delivery.chat
        if outcome.ok:
            recent = chat.last_success_at and now - chat.last_success_at < timedelta(minutes=1)
            if chat.consecutive_failures or not recent:
                refresh.append(chat.pk)
            if chat.consecutive_failures and delivery.kind != DeliveryKind.TEST:
                healed.append(chat.pk)
            continue
        if outcome.disable_endpoint:  # the service says the chat or hook is gone: tests too
            disable_chat(chat, outcome.disable_endpoint)
        if outcome.moved_to_chat_id is not None:
            _move_telegram_chat(chat, outcome.moved_to_chat_id)
        if delivery.kind != DeliveryKind.TEST:
            ChatEndpoint.objects.filter(pk=chat.pk).update(
                consecutive_failures=F("consecutive_failures") + 1, last_failure_at=now
            )
    if refresh:
        ChatEndpoint.objects.filter(pk__in=refresh).update(
            consecutive_failures=0, last_success_at=now
        )
    if healed:
        send_backlog_now(now, chat_id__in=healed)


def _move_telegram_chat(chat: ChatEndpoint, new_id: int) -> None:
    """Follow a group to its new supergroup id; if the owner already linked that id, the old
    row is turned off instead (its subscriptions keep the linked one)."""
    if ChatEndpoint.objects.filter(owner_id=chat.owner_id, telegram_chat_id=new_id).exists():
        disable_chat(chat, f"the group moved to chat {new_id}, which is linked already")
        return
    ChatEndpoint.objects.filter(pk=chat.pk).update(telegram_chat_id=new_id)


def disable_chat(chat: ChatEndpoint, reason: str) -> bool:
    """Stop a chat channel (a Telegram chat is unlinked), give up what waits for it, and tell
    its owner by e-mail (once); its page shows the reason."""
    reason = reason[:500]
    changed = ChatEndpoint.objects.filter(pk=chat.pk, active=True).update(
        active=False, disabled_reason=reason
    )
    if not changed:
        return False
    _abandon_waiting(f"the channel was turned off ({reason})", chat=chat)
    chat.active, chat.disabled_reason = False, reason
    transaction.on_commit(lambda: _tell_owner_chat_disabled(chat.pk))
    return True


def _tell_owner_chat_disabled(chat_id: int) -> None:
    chat = ChatEndpoint.objects.select_related("owner").get(pk=chat_id)
    if not chat.owner.email:
        return
    context = {
        "chat": chat,
        "chat_url": settings.SITE_URL + reverse("alerts:chat-detail", args=[chat.public_id]),
    }
    try:
        send_mail(
            subject=f"Whale Watch: your {chat.get_service_display()} alerts were turned off",
            message=render_to_string("alerts/email/chat_disabled.txt", context),
            from_email=None,
            recipient_list=[chat.owner.email],
        )
    except Exception:
        log.exception("could not e-mail the owner of chat channel %s", chat.public_id)


def redeliver(delivery: Delivery) -> bool:
    """Send a finished (or waiting) delivery again now, with the same webhook-id."""
    changed = Delivery.objects.filter(
        pk=delivery.pk,
        status__in=[DeliveryStatus.DELIVERED, DeliveryStatus.DEAD, DeliveryStatus.FAILED],
    ).update(
        status=DeliveryStatus.PENDING,
        next_attempt_at=timezone.now(),
        enqueued_at=timezone.now(),
    )
    if changed:
        enqueue_on_commit([delivery.pk])
    return bool(changed)


def create_test_delivery(endpoint: WebhookEndpoint | ChatEndpoint) -> Delivery:
    payload = sample_payload()
    if isinstance(endpoint, ChatEndpoint):
        target = {"channel": endpoint.service, "chat": endpoint}
    else:
        target = {"channel": Channel.WEBHOOK, "endpoint": endpoint}
    return Delivery.objects.create(
        kind=DeliveryKind.TEST,
        message_id=f"test_{uuid.uuid4().hex}",
        owner=endpoint.owner,
        **target,
        payload=payload,
        status=DeliveryStatus.PENDING,
        next_attempt_at=timezone.now(),
    )


def send_test_now(endpoint: WebhookEndpoint | ChatEndpoint) -> Delivery:
    """The "send test event" button: one immediate try, no retries, so the user sees a result."""
    delivery = create_test_delivery(endpoint)
    send_delivery(delivery.pk)
    delivery.refresh_from_db()
    return delivery
