"""The one door from whale events to alert delivery.

alerts.receivers calls fan_out(event_id) when detection announces a committed event
(detection.signals.whale_event_committed). In one transaction it:

1. claims the event (an EventFanOut row; a second fan-out of the same event stops here);
2. finds the subscriptions that want it, in one indexed query;
3. decides, per subscription, whether to send now or hold: quiet hours hold until they end,
   and a subscription past its hourly limit holds until its hour is up; the sweeper then sends
   what was held as one digest;
4. bulk-inserts one Delivery per channel (one e-mail per person, one webhook per endpoint, one
   message per Telegram chat or Discord/Slack hook, whatever number of their subscriptions
   matched), ignoring conflicts; a muted chat gets nothing;
5. queues the ready deliveries once the transaction has committed: healthy endpoints and
   e-mail in small batches (one task each), an endpoint that has been failing alone, so a slow
   receiver holds up nobody else's alert.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Min
from django.utils import timezone

from alerts import payloads, watch_fanout
from alerts.delivery import enqueue_on_commit
from alerts.models import (
    ALERT_KINDS,
    Channel,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    EventFanOut,
    Subscription,
    address_confirmed,
)
from detection.models import EventKind, WhaleEvent, task_priority

HOUR = timedelta(hours=1)


def _replacement_alerted_already(event: WhaleEvent) -> bool:
    """One alert per replacement. A replacement learnt from a resync answer is recorded at once
    without its transaction, and again when the transaction arrives (fetched off the socket
    reader, detection.ingest.sources.live): the second event completes the record and the
    dashboard, but its people were told already."""
    replacing = (event.details or {}).get("replacing_txid")
    if event.kind != EventKind.REPLACED or not replacing:
        return False
    return (
        WhaleEvent.everything.filter(
            chain_id=event.chain_id, kind=EventKind.REPLACED, sequence__lt=event.sequence
        )
        .filter(details__replacing_txid=replacing)
        .exists()
    )


def fan_out(event_id: int) -> int:
    """Create the deliveries for one committed whale event; returns how many were created."""
    event = (
        WhaleEvent.everything.select_related("whale", "whale__chain", "whale__replaced_by")
        .filter(pk=event_id)
        .first()
    )
    if event is None:
        return 0
    now = timezone.now()
    with transaction.atomic():
        try:
            with transaction.atomic():
                marker = EventFanOut.objects.create(
                    event=event, done_at=now, payload=payloads.event_payload(event)
                )
        except IntegrityError:
            return 0  # fanned out already (a redelivered task, or the sweeper's catch-up)
        if event.kind not in ALERT_KINDS or _replacement_alerted_already(event):
            return 0

        base = marker.payload
        whale = base["data"]["whale"]
        urgency = (whale.get("prediction") or {}).get("urgency")
        subscriptions = list(
            Subscription.objects.matching(
                value_sats=event.whale.value,
                moved_sats=event.whale.moved,
                fiat_value=(event.whale.fiat or {}).get("value"),
                fiat_moved=(event.whale.fiat or {}).get("moved"),
                kind=event.kind,
                flow=event.whale.flow,
                entities=[event.whale.from_entity, event.whale.to_entity],
                urgency=urgency,
                seen_in_mempool=event.whale.seen_in_mempool,
            )
            .select_related("owner", "owner__profile")
            .order_by("id")
        )
        # Watchlists (issue 21): the watchers' own delivery settings join the whale's
        # subscribers; the per-person dedup below then gives one alert per person.
        watched = watch_fanout.matches_for(event)
        if watched:
            watch_fanout.record_hits(event, watched)
            known = {s.pk for s in subscriptions}
            subscriptions += [
                s
                for s in watch_fanout.delivery_subscriptions(watched, event.kind)
                if s.pk not in known
            ]
            summary = base["data"]
            transaction.on_commit(lambda: watch_fanout.push_hits(event, watched, summary))
        if not subscriptions:
            return 0
        # Each person's own part: their matched entries and private labels (issue 21).
        own_parts = watch_fanout.owner_parts(event, watched, {s.owner_id for s in subscriptions})
        endpoints, failing = _active_endpoints(subscriptions)
        chats = _active_chats(subscriptions, now)
        held_until = _hold_times(subscriptions, now)

        rows: list[Delivery] = []
        emailed: set[int] = set()
        webhooked: set[int] = set()
        chatted: set[int] = set()
        for subscription in subscriptions:
            until = held_until.get(subscription.pk)
            common = {
                "kind": DeliveryKind.ALERT,
                "message_id": base["data"]["id"],
                "owner_id": subscription.owner_id,
                "event": event,
                "subscription": subscription,
                "status": DeliveryStatus.HELD if until else DeliveryStatus.PENDING,
                "next_attempt_at": until or now,
                "enqueued_at": None if until else now,
                "created_at": now,
            }
            if subscription.owner_id in own_parts:
                common["payload"] = payloads.with_watch(
                    payloads.for_subscription(base, subscription), own_parts[subscription.owner_id]
                )
            if (
                subscription.email
                and subscription.owner.email
                and address_confirmed(subscription.owner)
                and subscription.owner_id not in emailed
            ):
                emailed.add(subscription.owner_id)
                rows.append(Delivery(channel=Channel.EMAIL, **common))
            for endpoint_id in endpoints.get(subscription.pk, ()):
                if endpoint_id not in webhooked:
                    webhooked.add(endpoint_id)
                    rows.append(
                        Delivery(channel=Channel.WEBHOOK, endpoint_id=endpoint_id, **common)
                    )
            for chat_id, service in chats.get(subscription.pk, ()):
                if chat_id not in chatted:
                    chatted.add(chat_id)
                    rows.append(Delivery(channel=service, chat_id=chat_id, **common))

        Delivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
        ready = {
            row.public_id: row.endpoint_id for row in rows if row.status == DeliveryStatus.PENDING
        }
        healthy, on_their_own = [], []
        for public_id, pk in Delivery.objects.filter(public_id__in=ready).values_list(
            "public_id", "pk"
        ):
            (on_their_own if ready[public_id] in failing else healthy).append(pk)
        marker.deliveries = len(rows)
        marker.save(update_fields=["deliveries"])
        # A block's confirmations (hundreds at once) queue behind new mempool whales' alerts.
        priority = task_priority(event.kind)
        enqueue_on_commit(healthy, priority=priority)
        enqueue_on_commit(on_their_own, batch_size=1, priority=priority)
    return len(rows)


def _active_endpoints(subscriptions) -> tuple[dict[int, list[int]], set[int]]:
    """Each subscription's active endpoints, and which of those are failing at the moment."""
    links = Subscription.webhooks.through.objects.filter(
        subscription_id__in=[s.pk for s in subscriptions], webhookendpoint__active=True
    ).values_list("subscription_id", "webhookendpoint_id", "webhookendpoint__consecutive_failures")
    endpoints: dict[int, list[int]] = defaultdict(list)
    failing: set[int] = set()
    for subscription_id, endpoint_id, failures in links.order_by("webhookendpoint_id"):
        endpoints[subscription_id].append(endpoint_id)
        if failures:
            failing.add(endpoint_id)
    return endpoints, failing


def _active_chats(subscriptions, now: datetime) -> dict[int, list[tuple[int, str]]]:
    """Each subscription's chat channels that are on and not muted: (chat id, service)."""
    links = (
        Subscription.chats.through.objects.filter(
            subscription_id__in=[s.pk for s in subscriptions], chatendpoint__active=True
        )
        .exclude(chatendpoint__muted_until__gt=now)
        .values_list("subscription_id", "chatendpoint_id", "chatendpoint__service")
    )
    chats: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for subscription_id, chat_id, service in links.order_by("chatendpoint_id"):
        chats[subscription_id].append((chat_id, service))
    return chats


def _hold_times(subscriptions, now: datetime) -> dict[int, datetime]:
    """Subscriptions that must hold this alert, and until when.

    Quiet hours come first. Then the noise limit: a subscription that already sent
    max_per_hour alerts in the last hour holds until an hour after the first of them.
    """
    held: dict[int, datetime] = {}
    for subscription in subscriptions:
        until = subscription.quiet_until(now)
        if until is not None:
            held[subscription.pk] = until
    limited = {s.pk: s for s in subscriptions if s.max_per_hour and s.pk not in held}
    if not limited:
        return held
    # Two events fanning out at once must not both take the last free slot of the hour.
    list(Subscription.objects.select_for_update().filter(pk__in=limited).values_list("pk"))
    recent = (
        Delivery.objects.filter(
            subscription_id__in=limited, kind=DeliveryKind.ALERT, created_at__gt=now - HOUR
        )
        .exclude(status__in=[DeliveryStatus.HELD, DeliveryStatus.DIGESTED])
        .values("subscription_id")
        .annotate(sent=Count("event", distinct=True), first=Min("created_at"))
    )
    for row in recent:
        subscription = limited[row["subscription_id"]]
        if row["sent"] >= subscription.max_per_hour:
            held[subscription.pk] = row["first"] + HOUR
    return held
