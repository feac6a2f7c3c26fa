"""Subscriptions, webhook endpoints and the delivery outbox.

The outbox follows healthchecks' Notification and Saleor's EventDelivery/EventDeliveryAttempt:
a Delivery row exists before anything is queued, a send is claimed under a row lock
(select_for_update(skip_locked=True) re-checking that the row is still due),
and every try leaves a DeliveryAttempt row (written before the transport runs, so a worker that
dies mid-send still leaves a visible "interrupted" attempt).
"""

from __future__ import annotations

import base64
import re
import secrets
import unicodedata
import uuid
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from alerts.http import check_url, normalise_url
from alerts.payloads import for_subscription
from detection.domain.prices import fiat_of
from detection.models import EventKind, Flow
from detection.prices import latest_prices
from detection.txshape import SATS_PER_BTC

# Lifecycle events a subscription can ask for, in the order the pages list them.
ALERT_KINDS = (
    EventKind.SEEN,
    EventKind.REPLACED,
    EventKind.CONFIRMED,
    EventKind.DROPPED,
    EventKind.REORGED,
)
SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
# After a rotation the old secret keeps signing (as a second signature) for this long, so a
# receiver can switch without dropping messages (Standard Webhooks allows several signatures).
SECRET_ROTATION_OVERLAP = timedelta(hours=24)


def sats_from_btc(value: Decimal | str | float) -> int:
    return int((Decimal(str(value)) * SATS_PER_BTC).to_integral_value())


def btc_from_sats(sats: int | None) -> Decimal | None:
    return None if sats is None else Decimal(sats) / SATS_PER_BTC


ISO_CURRENCY = re.compile(r"[A-Z]{3}")


def fiat_floor_error(min_fiat: Decimal, currency: str) -> str | None:
    """Why a fiat minimum is refused: below what the portal floor is worth at the latest price.

    Without a known price it cannot be judged, and is accepted (it simply matches nothing until
    whales carry prices)."""
    quote = latest_prices().get(currency)
    if quote is None:
        return None
    floor_value = fiat_of(sats_from_btc(settings.WHALE_MIN_BTC), quote.price)
    if min_fiat >= floor_value:
        return None
    return (
        f"The fiat minimum cannot be below this portal's floor of {settings.WHALE_MIN_BTC:g} BTC, "
        f"worth {floor_value:,} {currency} at the latest price of {quote.price:,} {currency}/BTC."
    )


def new_webhook_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def address_confirmed(user) -> bool:
    """False while the owner's address awaits its confirmation link (sign-up, e-mail change);
    accounts without a profile were made by an operator and count as confirmed."""
    profile = getattr(user, "profile", None)
    return profile is None or profile.email_confirmed


class DelimitedListField(models.CharField):
    """A short list of strings stored as "|a|b|" ("" = empty list).

    Matching a subscription is one SQL query on every database the portal runs on (SQLite for a
    first run, PostgreSQL otherwise): `flows__contains="|exchange_inflow|"` works everywhere,
    where JSON containment does not.
    """

    def from_db_value(self, value, expression, connection):
        return self.to_python(value)

    def to_python(self, value):
        if isinstance(value, list):
            return value
        if not value:
            return []
        return [item for item in value.split("|") if item]

    def get_prep_value(self, value):
        if isinstance(value, str):
            return value
        items = [str(item).strip() for item in value or [] if str(item).strip()]
        return "|" + "|".join(items) + "|" if items else ""

    def value_to_string(self, obj):
        return self.get_prep_value(self.value_from_object(obj))

    def formfield(self, **kwargs):  # forms declare their own list fields
        return None


def _delimited_item_ok(item: str) -> bool:
    return bool(item) and "|" not in item and len(item) <= 100


class AmountBasis(models.TextChoices):
    MOVED = "moved", "Moved (less estimated change)"
    TOTAL = "total", "Total of all outputs"


def fiat_amounts(fiat: dict[str, Any] | None) -> dict[str, Decimal]:
    """An event's fiat figures ({currency: exact text}, as whales store them) as Decimals;
    anything malformed is left out, so it counts as no price."""
    amounts: dict[str, Decimal] = {}
    for currency, amount in (fiat or {}).items():
        try:
            value = Decimal(amount)
        except (InvalidOperation, TypeError, ValueError):
            continue
        if value.is_finite():
            amounts[currency] = value
    return amounts


def fiat_within(
    amount: Decimal | None, minimum: Decimal | None, maximum: Decimal | None = None
) -> bool:
    """The fiat rule of every alert rule (subscriptions in SQL below, watchlist entries in
    Python): bounds hold the amount in the rule's own currency, and a rule with a fiat bound
    never matches an amount without a price (no price is never a guess)."""
    if minimum is None and maximum is None:
        return True
    if amount is None:
        return False
    return (minimum is None or amount >= minimum) and (maximum is None or amount <= maximum)


def _amount_match(basis: str, sats: int, fiat: dict[str, Any] | None) -> Q:
    """Subscriptions of `basis` whose BTC range holds `sats` and whose fiat minimum, if any,
    is reached in its currency: `fiat_within` as a query (subscriptions have no fiat maximum)."""
    fiat_match = Q(min_fiat__isnull=True)
    for currency, value in fiat_amounts(fiat).items():
        fiat_match |= Q(fiat_currency=currency, min_fiat__lte=value)
    return Q(
        Q(max_sats__isnull=True) | Q(max_sats__gte=sats),
        fiat_match,
        amount_basis=basis,
        min_sats__lte=sats,
    )


class SubscriptionQuerySet(models.QuerySet):
    def matching(
        self,
        *,
        value_sats: int,
        kind: str,
        flow: str,
        entities,
        urgency,
        moved_sats: int | None = None,
        fiat_value: dict[str, Any] | None = None,
        fiat_moved: dict[str, Any] | None = None,
        seen_in_mempool: bool = True,
    ):
        """Active subscriptions that want this event. One query, served by subscription_matching.

        An unknown urgency (no fee known) only matches subscriptions without a minimum: we do
        not guess that a whale is urgent. Amounts compare with the whale's total or its moved
        value as each subscription's `amount_basis` says (fiat: {currency: exact text}). A whale
        confirmed without ever being seen in the mempool (found by a block scan) only reaches
        those that still want such news.
        """
        moved = value_sats if moved_sats is None else moved_sats
        # The entity rule of detection.models.entity_is: an exact name, in any case.
        entity_match = Q(entities="")
        for entity in {e for e in entities if e}:
            entity_match |= Q(entities__icontains=f"|{entity}|")
        urgency_match = Q(min_urgency__isnull=True)
        if urgency is not None:
            urgency_match |= Q(min_urgency__lte=urgency)
        amount_match = _amount_match(AmountBasis.TOTAL, value_sats, fiat_value) | _amount_match(
            AmountBasis.MOVED, moved, fiat_moved
        )
        unseen_match = Q()
        if kind == "confirmed" and not seen_in_mempool:
            unseen_match = Q(notify_unseen_confirmed=True)
        return self.filter(
            amount_match,
            unseen_match,
            entity_match,
            urgency_match,
            Q(flows="") | Q(flows__contains=f"|{flow}|"),
            active=True,
            for_watchlist=False,
            min_sats__lte=max(value_sats, moved),
            **{f"notify_{kind}": True},
        )


# How many subscriptions and endpoints one user may keep; the form and the REST API both ask the
# models below (limit_problem), so the rule and its words live here only.
MAX_SUBSCRIPTIONS_PER_USER = 50
MAX_ENDPOINTS_PER_USER = 20
MAX_CHATS_PER_USER = 20


class Subscription(models.Model):
    """What one user wants to hear about, and where (email and/or their webhook endpoints)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_subscriptions"
    )
    name = models.CharField(max_length=100)
    active = models.BooleanField(default=True)

    min_sats = models.BigIntegerField(help_text="smallest whale value, sats (>= WHALE_MIN_BTC)")
    max_sats = models.BigIntegerField(null=True, blank=True, help_text="largest, sats")
    # Which amount the BTC and fiat limits compare with (issue 15); existing subscriptions were
    # migrated to "total" so nothing changed for them silently.
    amount_basis = models.CharField(
        max_length=8, choices=AmountBasis.choices, default=AmountBasis.MOVED
    )
    min_fiat = models.DecimalField(
        max_digits=20,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="smallest fiat value at detection, in fiat_currency; a whale without a price "
        "never matches it",
    )
    fiat_currency = models.CharField(max_length=3, default="USD", help_text="ISO 4217 code")
    flows = DelimitedListField(max_length=200, blank=True, default=list, help_text="empty = any")
    entities = DelimitedListField(
        max_length=1000, blank=True, default=list, help_text="either side; empty = any"
    )
    min_urgency = models.FloatField(null=True, blank=True)

    notify_seen = models.BooleanField(default=True)
    notify_replaced = models.BooleanField(default=True)
    notify_confirmed = models.BooleanField(default=True)
    notify_dropped = models.BooleanField(default=True)
    notify_reorged = models.BooleanField(default=True)
    notify_unseen_confirmed = models.BooleanField(
        default=True,
        help_text="also whales confirmed without ever being seen in the mempool",
    )

    email = models.BooleanField(default=True, help_text="send to the owner's e-mail address")
    webhooks = models.ManyToManyField("WebhookEndpoint", blank=True, related_name="subscriptions")
    chats = models.ManyToManyField("ChatEndpoint", blank=True, related_name="subscriptions")

    # Local times in the owner's Profile.time_zone; the window may span midnight.
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    max_per_hour = models.PositiveIntegerField(
        null=True, blank=True, help_text="alerts per rolling hour; the rest go as one digest"
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Watchlists (issue 21): only the delivery settings of watch alerts, never matched to whales.
    for_watchlist = models.BooleanField(default=False)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(min_sats__gt=0), name="subscription_min_positive"),
            models.CheckConstraint(
                condition=Q(max_sats__isnull=True) | Q(max_sats__gte=F("min_sats")),
                name="subscription_max_at_least_min",
            ),
            models.CheckConstraint(
                condition=Q(min_fiat__isnull=True) | Q(min_fiat__gt=0),
                name="subscription_min_fiat_positive",
            ),
            models.CheckConstraint(
                condition=Q(min_urgency__isnull=True)
                | (Q(min_urgency__gte=0) & Q(min_urgency__lte=1)),
                name="subscription_urgency_0_1",
            ),
            models.CheckConstraint(
                condition=Q(quiet_start__isnull=True, quiet_end__isnull=True)
                | Q(quiet_start__isnull=False, quiet_end__isnull=False),
                name="subscription_quiet_hours_both_or_none",
            ),
        ]
        indexes = [
            # fan_out: "active subscriptions whose floor is at or below this whale"
            models.Index(
                fields=["min_sats"], name="subscription_matching", condition=Q(active=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.owner})"

    @staticmethod
    def limit_problem(owner) -> str | None:
        """Why `owner` may not add one more subscription, or None."""
        if Subscription.objects.filter(owner=owner).count() >= MAX_SUBSCRIPTIONS_PER_USER:
            return f"You can have at most {MAX_SUBSCRIPTIONS_PER_USER} subscriptions."
        return None

    @staticmethod
    def channel_problem(email: bool, webhooks, chats=()) -> str | None:
        """Why a subscription with these channels cannot be saved, or None."""
        if not email and not webhooks and not chats:
            return "Choose at least one channel: e-mail, a webhook or a chat."
        return None

    # --- presentation helpers -------------------------------------------------------------

    @property
    def min_btc(self) -> Decimal:
        return btc_from_sats(self.min_sats)

    @property
    def max_btc(self) -> Decimal | None:
        return btc_from_sats(self.max_sats)

    @property
    def kinds(self) -> list[str]:
        return [str(kind) for kind in ALERT_KINDS if getattr(self, f"notify_{kind}")]

    def set_kinds(self, kinds) -> None:
        for kind in ALERT_KINDS:
            setattr(self, f"notify_{kind}", str(kind) in set(kinds))

    def clean(self) -> None:
        errors: dict[str, str] = {}
        # The name reaches e-mail subjects: a line break there makes every send fail.
        if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in self.name or ""):
            errors["name"] = "Names cannot contain line breaks or other control characters."
        floor = sats_from_btc(settings.WHALE_MIN_BTC)
        if self.min_sats is not None and self.min_sats < floor:
            errors["min_sats"] = (
                f"The minimum cannot be below this portal's floor of {settings.WHALE_MIN_BTC:g} BTC."
            )
        if not ISO_CURRENCY.fullmatch(self.fiat_currency or ""):
            errors["fiat_currency"] = "A currency is three capital letters (ISO 4217), e.g. USD."
        elif self.min_fiat is not None:
            floor_error = fiat_floor_error(self.min_fiat, self.fiat_currency)
            if floor_error:
                errors["min_fiat"] = floor_error
        if self.max_sats is not None and self.min_sats and self.max_sats < self.min_sats:
            errors["max_sats"] = "The maximum must be at least the minimum."
        bad_flows = [f for f in self.flows if f not in Flow.values]
        if bad_flows:
            errors["flows"] = f"Unknown flow: {', '.join(bad_flows)}."
        elif len(self._meta.get_field("flows").get_prep_value(self.flows)) > 200:
            # Only repeats can overflow the column (five flows fit), and an overflow would
            # otherwise surface from the database as a 500.
            errors["flows"] = "Give each flow at most once."
        if any(not _delimited_item_ok(e) for e in self.entities):
            errors["entities"] = "Entity names are 1 to 100 characters, without '|'."
        if len(self.get_prep_entities()) > 1000:
            errors["entities"] = "Too many entities."
        if (self.quiet_start is None) != (self.quiet_end is None):
            errors["quiet_end"] = "Give both a start and an end for quiet hours, or neither."
        elif self.quiet_start is not None and self.quiet_start == self.quiet_end:
            errors["quiet_end"] = "Quiet hours must end at a different time than they start."
        if not self.kinds:
            errors["notify_seen"] = "Choose at least one lifecycle event."
        if errors:
            raise ValidationError(errors)

    def get_prep_entities(self) -> str:
        return self._meta.get_field("entities").get_prep_value(self.entities)

    # --- delivery rules -------------------------------------------------------------------

    def time_zone(self):
        from zoneinfo import ZoneInfo

        profile = getattr(self.owner, "profile", None)
        try:
            return ZoneInfo(profile.time_zone if profile else "UTC")
        except (KeyError, ValueError):
            return ZoneInfo("UTC")

    def quiet_until(self, now: datetime) -> datetime | None:
        """When the quiet window around `now` ends (aware UTC), or None if `now` is not quiet."""
        if self.quiet_start is None or self.quiet_end is None:
            return None
        tz = self.time_zone()
        local = now.astimezone(tz)
        start, end, clock = self.quiet_start, self.quiet_end, local.time()
        # A window whose end is before its start spans midnight (e.g. 22:00-07:00).
        quiet = start <= clock < end if start < end else (clock >= start or clock < end)
        if not quiet:
            return None
        end_day = local.date()
        if clock >= end:  # e.g. 23:00 with end 07:00: it ends tomorrow
            end_day += timedelta(days=1)
        return _local_datetime(end_day, end, tz).astimezone(UTC)


def _local_datetime(day, clock: time, tz) -> datetime:
    """`clock` on `day` in `tz`; a time that a DST jump skips lands just after the jump."""
    candidate = datetime.combine(day, clock, tzinfo=tz)
    # Round-tripping through UTC moves a non-existent local time forward by the gap.
    return candidate.astimezone(UTC).astimezone(tz)


class WebhookEndpoint(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=200, blank=True, default="")
    secret = models.CharField(max_length=100, default=new_webhook_secret)
    previous_secret = models.CharField(max_length=100, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)

    active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True, default="")
    consecutive_failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:  # never the secret
        return f"<WebhookEndpoint {self.public_id} {self.url}>"

    @staticmethod
    def limit_problem(owner) -> str | None:
        """Why `owner` may not add one more endpoint, or None."""
        if WebhookEndpoint.objects.filter(owner=owner).count() >= MAX_ENDPOINTS_PER_USER:
            return f"You can have at most {MAX_ENDPOINTS_PER_USER} endpoints."
        return None

    def clean(self) -> None:
        try:
            self.url = normalise_url(self.url)
            check_url(self.url)
        except ValueError as exc:
            raise ValidationError({"url": str(exc)}) from None

    def signing_secrets(self, now: datetime | None = None) -> list[str]:
        now = now or timezone.now()
        keys = [self.secret]
        if (
            self.previous_secret
            and self.previous_secret_expires_at
            and self.previous_secret_expires_at > now
        ):
            keys.append(self.previous_secret)
        return keys

    def rotate_secret(self) -> None:
        self.previous_secret = self.secret
        self.previous_secret_expires_at = timezone.now() + SECRET_ROTATION_OVERLAP
        self.secret = new_webhook_secret()
        self.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])

    def enable(self) -> None:
        self.active = True
        self.disabled_reason = ""
        self.consecutive_failures = 0
        self.failing_since = None


class DeliveryKind(models.TextChoices):
    ALERT = "alert"
    DIGEST = "digest"
    TEST = "test"


class Channel(models.TextChoices):
    EMAIL = "email"
    WEBHOOK = "webhook"
    TELEGRAM = "telegram"
    DISCORD = "discord"
    SLACK = "slack"


# Channels whose destination is a ChatEndpoint (Delivery.chat).
CHAT_CHANNELS = (Channel.TELEGRAM, Channel.DISCORD, Channel.SLACK)


class DeliveryStatus(models.TextChoices):
    HELD = "held", "held (quiet hours or hourly limit)"
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed", "failed (will retry)"
    DEAD = "dead", "dead (gave up)"
    DIGESTED = "digested", "sent in a digest"


# Waiting for a send (now or at next_attempt_at).
SENDABLE = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)
FINAL = (DeliveryStatus.DELIVERED, DeliveryStatus.DEAD, DeliveryStatus.DIGESTED)


class DeliveryQuerySet(models.QuerySet):
    def for_owner(self, user):
        return self.filter(owner=user)

    def claimable(self, *, now: datetime, stranded_before: datetime):
        """Rows a sender may take: due pending/failed ones, and ones left in "sending" by a
        worker that died long enough ago. Everything else (delivered, taken by another worker,
        not due yet) is left alone, which makes a duplicated or redelivered task a no-op."""
        return self.filter(
            Q(status__in=SENDABLE, next_attempt_at__lte=now)
            | Q(status=DeliveryStatus.SENDING, sending_since__lt=stranded_before)
        )


class Delivery(models.Model):
    """One message to one channel: an alert (event), a digest of held alerts, or a test."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # The Standard Webhooks webhook-id: the event's id for an alert, so it is the same on
    # every retry and redelivery and a receiver can deduplicate by it.
    message_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=8, choices=DeliveryKind.choices, default="alert")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_deliveries"
    )
    event = models.ForeignKey(
        "detection.WhaleEvent",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="alert_deliveries",
    )
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deliveries",
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    endpoint = models.ForeignKey(
        WebhookEndpoint,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="deliveries",
    )
    chat = models.ForeignKey(
        "ChatEndpoint",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="deliveries",
    )
    digest = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="digested"
    )
    # A digest's or test's own message. Alerts leave it empty and share their event's payload
    # (EventFanOut.payload), frozen at fan-out: stored once, not once per subscriber.
    payload = models.JSONField(default=dict, blank=True)

    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When a send task was last put on the broker; the sweeper re-queues only after a while.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    sending_since = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            # fan_out's bulk insert ignores conflicts: a second fan-out of an event is a no-op.
            models.UniqueConstraint(
                fields=["event", "subscription", "channel"],
                condition=Q(endpoint__isnull=True, chat__isnull=True),
                name="delivery_once_per_event_subscription_channel",
            ),
            # One message per event per receiver, which is what webhook-id = event id promises.
            models.UniqueConstraint(
                fields=["event", "endpoint"],
                condition=Q(endpoint__isnull=False),
                name="delivery_once_per_event_endpoint",
            ),
            models.UniqueConstraint(
                fields=["event", "chat"],
                condition=Q(chat__isnull=False),
                name="delivery_once_per_event_chat",
            ),
            models.CheckConstraint(
                condition=Q(channel="email", endpoint__isnull=True, chat__isnull=True)
                | Q(channel="webhook", endpoint__isnull=False, chat__isnull=True)
                | Q(channel__in=CHAT_CHANNELS, endpoint__isnull=True, chat__isnull=False),
                name="delivery_endpoint_iff_webhook",
            ),
        ]
        indexes = [
            # the sweeper: due retries, held alerts whose window ended
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_due",
                condition=Q(status__in=["pending", "failed", "held"]),
            ),
            # the sweeper: sends stranded by a dead worker
            models.Index(
                fields=["sending_since"], name="delivery_stranded", condition=Q(status="sending")
            ),
            # the delivery log, newest first
            models.Index(fields=["owner", "-created_at"], name="delivery_log"),
            # the hourly noise limit: a subscription's recent alerts
            models.Index(fields=["subscription", "created_at"], name="delivery_recent_by_sub"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.channel} {self.public_id} ({self.status})"

    @property
    def destination(self) -> str:
        if self.channel == Channel.WEBHOOK and self.endpoint_id:
            return self.endpoint.url
        if self.chat_id:
            return str(self.chat)
        return self.owner.email

    @property
    def body(self) -> dict:
        """The message as sent: the same on every retry."""
        if self.payload or self.event_id is None:
            return self.payload
        base = self.event.alert_fanout.payload
        return for_subscription(base, self.subscription) if self.subscription_id else base

    @property
    def message_type(self) -> str:
        if self.payload:
            return self.payload.get("type", "")
        return f"whale.{self.event.kind}" if self.event_id else ""

    @property
    def can_redeliver(self) -> bool:
        return self.status in (
            DeliveryStatus.DELIVERED,
            DeliveryStatus.DEAD,
            DeliveryStatus.FAILED,
        )


class AttemptOutcome(models.TextChoices):
    IN_PROGRESS = "in_progress", "in progress"
    DELIVERED = "delivered"
    FAILED = "failed"
    INTERRUPTED = "interrupted", "interrupted (worker stopped)"


class DeliveryAttempt(models.Model):
    """One try of one delivery, written before the transport runs and completed after."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_set")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(
        max_length=12, choices=AttemptOutcome.choices, default=AttemptOutcome.IN_PROGRESS
    )
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=1000, blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["number", "id"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="attempt_number_once"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.outcome}"


class EventFanOut(models.Model):
    """Marks a whale event as fanned out. Written in the same transaction as its deliveries.

    The sweeper looks for recent events without one, so an event whose on-commit fan-out was
    lost (worker killed, database blip) still gets its alerts.
    """

    event = models.OneToOneField(
        "detection.WhaleEvent", on_delete=models.CASCADE, related_name="alert_fanout"
    )
    deliveries = models.PositiveIntegerField(default=0)
    done_at = models.DateTimeField(default=timezone.now)
    # The alert body for this event (without the per-subscription part), frozen at fan-out.
    payload = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"fan-out of event {self.event_id}: {self.deliveries}"


# --- chat channels (Telegram, Discord, Slack) ---------------------------------------------------

# A "Connect Telegram" link works once, for this long.
TELEGRAM_LINK_TTL = timedelta(hours=1)


class ChatEndpoint(models.Model):
    """Where chat alerts go: a linked Telegram chat, or a Discord or Slack incoming webhook."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_endpoints"
    )
    service = models.CharField(
        max_length=8,
        choices=[(c.value, c.label) for c in CHAT_CHANNELS],
    )
    label = models.CharField(max_length=200, blank=True, default="")
    # Discord and Slack: the incoming-webhook URL the user pasted (it is a secret: whoever has
    # it can post to the channel, so pages show it shortened).
    url = models.CharField(max_length=2000, blank=True, default="")
    # Telegram: the chat that sent /start <token>.
    telegram_chat_id = models.BigIntegerField(null=True, blank=True)
    muted_until = models.DateTimeField(null=True, blank=True)

    active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True, default="")
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["service", "created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(service="telegram", telegram_chat_id__isnull=False, url="")
                | (Q(service__in=["discord", "slack"], telegram_chat_id__isnull=True) & ~Q(url="")),
                name="chat_endpoint_target_fits_service",
            ),
            # A chat is linked once per account; linking it again re-activates that row.
            models.UniqueConstraint(
                fields=["owner", "telegram_chat_id"],
                condition=Q(telegram_chat_id__isnull=False),
                name="chat_endpoint_telegram_once_per_owner",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_service_display()}: {self.display_name}"

    def __repr__(self) -> str:  # never the webhook URL (it carries the hook's token)
        return f"<ChatEndpoint {self.public_id} {self.service}>"

    @staticmethod
    def limit_problem(owner) -> str | None:
        """Why `owner` may not add one more chat channel, or None."""
        if ChatEndpoint.objects.filter(owner=owner).count() >= MAX_CHATS_PER_USER:
            return f"You can have at most {MAX_CHATS_PER_USER} chat channels."
        return None

    @property
    def display_name(self) -> str:
        if self.label:
            return self.label
        if self.service == Channel.TELEGRAM:
            return f"chat {self.telegram_chat_id}"
        return self.short_url

    @property
    def short_url(self) -> str:
        """The hook URL without its secret tail, for pages and logs."""
        if not self.url:
            return ""
        head, _, tail = self.url.rpartition("/")
        return f"{head}/{tail[:4]}…" if head and len(tail) > 8 else self.url

    def clean(self) -> None:
        if self.service in (Channel.DISCORD, Channel.SLACK):
            try:
                check_url(self.url)
            except ValueError as exc:
                raise ValidationError({"url": str(exc)}) from None

    def is_muted(self, now: datetime | None = None) -> bool:
        return self.muted_until is not None and self.muted_until > (now or timezone.now())

    def enable(self) -> None:
        self.active = True
        self.disabled_reason = ""
        self.consecutive_failures = 0


def new_link_token() -> str:
    # Telegram's /start parameter allows 1-64 characters of A-Z a-z 0-9 _ -.
    return secrets.token_urlsafe(24)


class TelegramLink(models.Model):
    """A one-time "Connect Telegram" token: the chat that sends /start <token> is linked."""

    token = models.CharField(max_length=64, unique=True, default=new_link_token)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="telegram_links"
    )
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)
    chat = models.ForeignKey(ChatEndpoint, on_delete=models.SET_NULL, null=True, blank=True)

    def __str__(self) -> str:
        return f"Telegram link for {self.owner} ({'used' if self.used_at else 'open'})"

    def usable(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.used_at is None and now - self.created_at < TELEGRAM_LINK_TTL


class TelegramBotState(models.Model):
    """The bot's one row: its username (from getMe) and the getUpdates offset already read."""

    update_offset = models.BigIntegerField(default=0)
    bot_username = models.CharField(max_length=64, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"@{self.bot_username or '?'} at update {self.update_offset}"

    @classmethod
    def load(cls) -> TelegramBotState:
        state, _ = cls.objects.get_or_create(pk=1)
        return state


# Watchlists (issue 21) live in their own module; imported here so Django registers them.
from alerts.watchlists import PrivateLabel, WatchlistEntry  # noqa: E402, F401
