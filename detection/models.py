"""Whale records: labels, whale transactions, their lifecycle events, predictions and blocks.

Amounts are integer satoshis. Domain computations (classification, urgency, accuracy) live in
detection.domain and import no Django; the models call into them.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper

from detection.txshape import SATS_PER_BTC
from whaleproject.celery import PRIORITY_BACKLOG, PRIORITY_STREAM


class LabelKind(models.TextChoices):
    EXCHANGE = "exchange"
    MINER = "miner"
    CUSTODIAN = "custodian"
    MIXER = "mixer"
    SERVICE = "service"
    OTHER = "other"


class AddressLabel(models.Model):
    """Who owns an address, according to one source.

    An address may carry labels from several sources (an operator's CSV, pools-v2.json, clustering);
    `source == "cluster"` marks a label derived by common-input clustering, never imported.
    """

    DERIVED_SOURCE = "cluster"

    address = models.CharField(max_length=100)
    entity = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=LabelKind.choices)
    source = models.CharField(max_length=60)
    confidence = models.FloatField(default=1.0)
    derived_from_txid = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["address", "source"], name="label_one_per_source"),
            models.CheckConstraint(
                condition=Q(confidence__gte=0) & Q(confidence__lte=1), name="label_confidence_0_1"
            ),
        ]
        indexes = [
            # classification looks up every address of a whale at once
            models.Index(fields=["address"], name="label_by_address"),
            # the API's and admin's entity filter
            models.Index(fields=["entity"], name="label_by_entity"),
        ]

    def __str__(self) -> str:
        return f"{self.address} → {self.entity} ({self.source})"

    @property
    def is_derived(self) -> bool:
        return self.source == self.DERIVED_SOURCE


class Flow(models.TextChoices):
    # The labels are the words every surface uses: pages, filters, alerts (lower-cased) and the
    # browser (base.html hands them to the scripts as JSON).
    EXCHANGE_INFLOW = "exchange_inflow", "Exchange inflow"
    EXCHANGE_OUTFLOW = "exchange_outflow", "Exchange outflow"
    INTER_EXCHANGE = "inter_exchange", "Inter-exchange"
    EXCHANGE_INTERNAL = "exchange_internal", "Exchange internal"
    UNKNOWN = "unknown", "Unlabelled"


class WhaleStatus(models.TextChoices):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REPLACED = "replaced"
    DROPPED = "dropped"


class Block(models.Model):
    height = models.PositiveIntegerField()
    hash = models.CharField(max_length=64, unique=True)
    time = models.DateTimeField(null=True, blank=True)
    orphaned = models.BooleanField(default=False)
    seen_at = models.DateTimeField(auto_now_add=True)
    # When the ingest's block scan found every whale of it; the highest such block not orphaned
    # is where a restarted ingest catches up from.
    scanned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # reorg detection: "which block do we hold at this height?"
            models.Index(fields=["height"], name="block_by_height"),
        ]

    def __str__(self) -> str:
        return f"{self.height} {self.hash[:16]}…"


def entity_is(name: str) -> Q:
    """The one entity-matching rule: the whale's sender or receiver is `name`, in any case.

    The REST API and the feed filter use it; subscriptions hold their names in a delimited list
    and match an item in any case (alerts.models.SubscriptionQuerySet.matching), the same rule.
    """
    return Q(from_entity__iexact=name) | Q(to_entity__iexact=name)


class PublicManager(models.Manager):
    """Rows everyone may see: not the watch-only hits (issue 21), which belong to their
    watchers alone. `everything` is the unfiltered manager for recording and fan-out."""

    def get_queryset(self):
        return super().get_queryset().filter(watch_only=False)


class WhaleTransaction(models.Model):
    """One whale transaction. A replacement (RBF) is its own row in the same `chain`."""

    txid = models.CharField(max_length=64, unique=True)
    # The first transaction of the RBF chain; a replacement continues its alert chain.
    chain = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="chain_members"
    )
    replaced_by = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replaces"
    )
    status = models.CharField(
        max_length=16, choices=WhaleStatus.choices, default=WhaleStatus.PENDING
    )

    value = models.BigIntegerField(help_text="sum of outputs, sats")
    transfer = models.BigIntegerField(help_text="value less change to input addresses, sats")
    # What really moved (detection.domain.change): value less the outputs judged change.
    moved = models.BigIntegerField(default=0, help_text="value less estimated change, sats")
    moved_confidence = models.FloatField(
        null=True, blank=True, help_text="0..1 confidence in `moved`; null: not estimated"
    )
    change_outputs = models.JSONField(default=list, help_text="indexes of outputs judged change")
    change_methods = models.JSONField(default=list, help_text="heuristics that decided")
    # Fiat at detection (detection.domain.prices), null when no fresh price was known. USD has
    # columns (filters, sums); `fiat` holds every currency the source gave as exact decimal
    # strings: {"prices": {...}, "price_time": epoch, "value": {...}, "moved": {...}}.
    price_usd = models.DecimalField(max_digits=20, decimal_places=8, null=True, blank=True)
    value_usd = models.DecimalField(max_digits=24, decimal_places=2, null=True, blank=True)
    moved_usd = models.DecimalField(max_digits=24, decimal_places=2, null=True, blank=True)
    fiat = models.JSONField(default=dict, blank=True)
    fee = models.BigIntegerField(null=True, blank=True, help_text="sats; null when unknown")
    vsize = models.PositiveIntegerField()
    weight = models.PositiveIntegerField()
    fee_rate = models.FloatField(null=True, blank=True, help_text="fee / vsize, sat/vB")
    effective_fee_rate = models.FloatField(null=True, blank=True, help_text="package-aware")
    has_prevouts = models.BooleanField(default=True)
    inputs = models.JSONField(default=list)
    outputs = models.JSONField(default=list)

    flow = models.CharField(max_length=20, choices=Flow.choices, default=Flow.UNKNOWN)
    from_entity = models.CharField(max_length=100, blank=True, default="")
    to_entity = models.CharField(max_length=100, blank=True, default="")
    shape_tags = models.JSONField(default=list)

    conflict = models.BooleanField(default=False, help_text="double spend seen")
    conflict_winner = models.BooleanField(null=True, blank=True)

    first_seen_at = models.DateTimeField(help_text="when the mempool first showed it to us")
    seen_in_mempool = models.BooleanField(
        default=True, help_text="false when we only learnt of it from a block"
    )
    source = models.CharField(max_length=200, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)
    # When the source observed the event that set `status`. Celery may run a whale's events out
    # of order (two workers), so a status only changes for a newer observation.
    status_at = models.DateTimeField(null=True, blank=True)

    # Copy of the latest prediction's urgency (detection.recording keeps it), so the API's
    # min_urgency filter is a column comparison rather than a subquery per row.
    latest_urgency = models.FloatField(null=True, blank=True)

    confirmed_height = models.PositiveIntegerField(null=True, blank=True)
    confirmed_hash = models.CharField(max_length=64, blank=True, default="")
    confirmed_at = models.DateTimeField(null=True, blank=True)
    blocks_waited = models.IntegerField(null=True, blank=True)

    # Watchlists (issue 21): below the whale floor, recorded only because a user watches one of
    # its addresses; shown to its watchers only, never counted in the public feed or stats.
    watch_only = models.BooleanField(default=False)

    objects = PublicManager()
    everything = models.Manager()  # noqa: DJ012 - a second manager, not a field

    class Meta:
        indexes = [
            # the live feed and the API's default order: newest first
            models.Index(fields=["-first_seen_at", "-id"], name="whale_newest_first"),
            # the feed's pending panel
            models.Index(
                fields=["-first_seen_at"],
                name="whale_pending_newest",
                condition=Q(status="pending"),
            ),
            # min_btc + flow filters
            models.Index(fields=["flow", "-value"], name="whale_by_flow_value"),
            models.Index(fields=["-value"], name="whale_by_value"),
            # min_moved_btc and min_usd filters
            models.Index(fields=["-moved"], name="whale_by_moved"),
            models.Index(fields=["-value_usd"], name="whale_by_value_usd"),
            # entity + date range filters (entity_is: an exact name in any case, hence Upper)
            models.Index(
                Upper("from_entity"), F("first_seen_at").desc(), name="whale_by_from_entity_ci"
            ),
            models.Index(
                Upper("to_entity"), F("first_seen_at").desc(), name="whale_by_to_entity_ci"
            ),
            # reorg: whales confirmed at a height
            models.Index(fields=["confirmed_height"], name="whale_by_confirmed_height"),
            # API stats volumes: an index-only scan of a window instead of reading every row
            models.Index(
                fields=["first_seen_at"],
                include=["flow", "status", "value", "transfer"],
                name="whale_stats_window",
            ),
            # API stats coverage: confirmed whales of a window, index-only
            models.Index(
                fields=["confirmed_at"],
                include=["seen_in_mempool"],
                condition=Q(status="confirmed"),
                name="whale_coverage_window",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.txid[:16]}… {self.value_btc} BTC"

    @property
    def value_btc(self) -> float:
        return self.value / SATS_PER_BTC

    @property
    def transfer_btc(self) -> float:
        return self.transfer / SATS_PER_BTC

    @property
    def moved_btc(self) -> float:
        return self.moved / SATS_PER_BTC

    def addresses(self) -> set[str]:
        """Every address it pays to or (with prevouts) spends from."""
        return {row.get("address") for row in (self.inputs or []) + (self.outputs or [])} - {
            None,
            "",
        }

    def fiat_amount(self, which: str, currency: str) -> str | None:
        """Exact decimal text of the fiat `which` ("value" or "moved") in `currency`, or None."""
        values = (self.fiat or {}).get(which) or {}
        amount = values.get(currency)
        return amount if isinstance(amount, str) else None

    @property
    def chain_root(self) -> WhaleTransaction:
        return self.chain if self.chain_id else self

    @property
    def best_fee_rate(self) -> float | None:
        return self.effective_fee_rate if self.effective_fee_rate is not None else self.fee_rate


class EventKind(models.TextChoices):
    SEEN = "seen"
    UPDATED = "updated"
    REPLACED = "replaced"
    DROPPED = "dropped"
    CONFIRMED = "confirmed"
    REORGED = "reorged"
    CONFIRMATIONS = "confirmations"


# What the mempool reports one whale at a time, a few a second. The other kinds come in bursts
# (a block confirms hundreds of whales at once; a reorg, a resync's drops), so their recording
# and alerts wait behind the stream's (whaleproject.celery.PRIORITY_BACKLOG).
STREAM_KINDS = frozenset({EventKind.SEEN, EventKind.UPDATED, EventKind.REPLACED})


def task_priority(kind: str) -> int:
    """The broker priority of the tasks that record an event of `kind` and send its alerts."""
    return PRIORITY_STREAM if kind in STREAM_KINDS else PRIORITY_BACKLOG


class WhaleEvent(models.Model):
    """One step in a whale's life. The row exists before anything is pushed or sent."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, help_text="ingest's event id")
    whale = models.ForeignKey(WhaleTransaction, on_delete=models.CASCADE, related_name="events")
    chain = models.ForeignKey(
        WhaleTransaction, on_delete=models.CASCADE, related_name="chain_events"
    )
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    sequence = models.PositiveIntegerField()
    occurred_at = models.DateTimeField()
    frame_received_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    details = models.JSONField(default=dict)
    # A copy of its whale's watch_only (issue 21), so the public event lists need no join.
    watch_only = models.BooleanField(default=False)

    objects = PublicManager()
    everything = models.Manager()  # noqa: DJ012 - a second manager, not a field

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["chain", "kind", "sequence"], name="event_once_per_chain_kind_sequence"
            ),
        ]
        indexes = [
            # a whale's timeline, and the dashboard snapshot's latest events
            models.Index(fields=["chain", "occurred_at"], name="event_chain_timeline"),
            models.Index(fields=["-created_at"], name="event_newest_first"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.whale.txid[:16]}… #{self.sequence}"


class UrgencyBand(models.TextChoices):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class PredictionOutcome(models.TextChoices):
    OPEN = "open"
    CONFIRMED = "confirmed"
    REPLACED = "replaced"
    DROPPED = "dropped"


class Prediction(models.Model):
    """What we predicted about a whale's confirmation, and what then happened."""

    whale = models.ForeignKey(
        WhaleTransaction, on_delete=models.CASCADE, related_name="predictions"
    )
    event = models.ForeignKey(
        WhaleEvent, on_delete=models.SET_NULL, null=True, blank=True, related_name="predictions"
    )
    made_at = models.DateTimeField()
    tip_height = models.PositiveIntegerField(null=True, blank=True)
    fee_rate = models.FloatField(null=True, blank=True)
    projected_block = models.PositiveIntegerField(null=True, blank=True)
    predicted_blocks = models.PositiveIntegerField(null=True, blank=True)
    fee_percentile = models.FloatField(null=True, blank=True)
    urgency = models.FloatField(null=True, blank=True)
    band = models.CharField(max_length=8, choices=UrgencyBand.choices, blank=True, default="")
    eta_seconds = models.PositiveIntegerField(null=True, blank=True)
    may_not_confirm_soon = models.BooleanField(default=False)
    may_be_purged = models.BooleanField(default=False)  # fee rate under mempoolminfee
    # The chain's first prediction: the one its accuracy outcome is scored on (later ones are
    # kept for display; see detection.domain.accuracy).
    scored = models.BooleanField(default=True)
    fee_spike = models.BooleanField(default=False)
    basis = models.CharField(max_length=20, blank=True, default="")

    outcome = models.CharField(
        max_length=10, choices=PredictionOutcome.choices, default=PredictionOutcome.OPEN
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_height = models.PositiveIntegerField(null=True, blank=True)
    resolved_block_hash = models.CharField(max_length=64, blank=True, default="")
    actual_blocks = models.IntegerField(null=True, blank=True)
    hit = models.BooleanField(null=True, blank=True)
    abs_error = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            # accuracy windows: resolved predictions by time and band
            models.Index(
                fields=["resolved_at", "band"],
                name="prediction_resolved_window",
                condition=~Q(outcome="open"),
            ),
            # reorg: reopen what an orphaned block resolved
            models.Index(fields=["resolved_block_hash"], name="prediction_by_resolved_block"),
        ]

    def __str__(self) -> str:
        return f"prediction {self.whale.txid[:16]}… {self.predicted_blocks} blocks"


# --- rollups ----------------------------------------------------------------------------------
#
# Per-hour sums behind GET /api/v1/stats/, so a request reads at most a few thousand small rows
# instead of aggregating hundreds of thousands of whales or predictions. detection.recording keeps
# them in the same transaction as the rows they sum, detection.retention subtracts what it purges,
# and migration 0004 backfilled them. Code that writes whales or predictions any other way (the
# admin, a shell) leaves them stale; `detection.stats.rebuild_rollups()` recomputes them.


def _upsert_sums(model, key_fields: tuple[str, ...], sum_fields: tuple[str, ...], deltas) -> None:
    """Add `deltas` ({key tuple: sums tuple}) to the rows of `model`, creating missing ones.

    One INSERT … ON CONFLICT DO UPDATE, which SQLite and PostgreSQL both speak, so concurrent
    writers add to a row instead of racing to create it. Keys go in sorted order: two
    transactions then lock the rows they share in the same order and cannot deadlock.
    """
    from django.db import connection

    rows = sorted((key, sums) for key, sums in deltas.items() if any(sums))
    if not rows:
        return
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = [*key_fields, *sum_fields]
    adapt = connection.ops.adapt_datetimefield_value
    params: list = []
    for key, sums in rows:
        params.extend(adapt(part) if hasattr(part, "tzinfo") else part for part in key)
        params.extend(sums)
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    updates = ", ".join(
        f"{quote(f)} = {table}.{quote(f)} + excluded.{quote(f)}" for f in sum_fields
    )
    # Only quoted model names are interpolated; every value is a parameter.
    column_list = ", ".join(quote(c) for c in columns)
    values = ", ".join([placeholders] * len(rows))
    conflict = ", ".join(quote(f) for f in key_fields)
    sql = f"INSERT INTO {table} ({column_list}) VALUES {values} ON CONFLICT ({conflict}) DO UPDATE SET {updates}"  # noqa: S608, E501
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


class WhaleHourlyVolume(models.Model):
    """Whales first seen in one UTC hour with one flow: count, value and transfer, in sats.

    Replaced transactions are left out, as the API's volumes leave them out (their replacement
    carries the money), so a whale moves in or out of its row when it becomes or stops being
    `replaced`. Rows whose sums fall back to zero stay; they cost nothing to read.
    """

    KEY = ("hour", "flow")
    SUMS = ("count", "value", "transfer", "moved", "value_usd_cents", "moved_usd_cents", "priced")

    hour = models.DateTimeField(help_text="start of the UTC hour of first_seen_at")
    flow = models.CharField(max_length=20, choices=Flow.choices)
    count = models.BigIntegerField(default=0)
    value = models.BigIntegerField(default=0)
    transfer = models.BigIntegerField(default=0)
    # Fiat volume (issue 15): whales seen with a USD price, and their USD sums in cents.
    moved = models.BigIntegerField(default=0)
    value_usd_cents = models.BigIntegerField(default=0)
    moved_usd_cents = models.BigIntegerField(default=0)
    priced = models.BigIntegerField(default=0, help_text="whales with a USD value")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hour", "flow"], name="volume_one_per_hour_flow"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.flow}: {self.count}"

    @classmethod
    def add(cls, deltas: dict[tuple, tuple[int, ...]]) -> None:
        _upsert_sums(cls, cls.KEY, cls.SUMS, deltas)


class WhaleHourlyCoverage(models.Model):
    """Whales confirmed (by `confirmed_at`) in one UTC hour: how many, and how many of them we
    saw in the mempool first. The API's coverage figure is the ratio over a window."""

    KEY = ("hour",)
    SUMS = ("mined", "seen_first")

    hour = models.DateTimeField(help_text="start of the UTC hour of confirmed_at")
    mined = models.BigIntegerField(default=0)
    seen_first = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hour"], name="coverage_one_per_hour"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h: {self.seen_first}/{self.mined} seen first"

    @classmethod
    def add(cls, deltas: dict[tuple, tuple[int, int]]) -> None:
        _upsert_sums(cls, cls.KEY, cls.SUMS, deltas)


class PredictionHourlyOutcome(models.Model):
    """Predictions resolved in one UTC hour in one urgency band, counted as the accuracy windows
    count them (detection.domain.accuracy): `resolved`/`hits`/`error_sum` over scorable
    confirmations, `replaced` and `dropped` apart. Open and unscorable predictions are not here.

    Every accuracy figure is a ratio of these sums, so windows built from whole hours plus the
    raw rows of the partial hours at their edges are exact.
    """

    KEY = ("hour", "band")
    SUMS = ("resolved", "hits", "error_sum", "replaced", "dropped")

    hour = models.DateTimeField(help_text="start of the UTC hour of resolved_at")
    band = models.CharField(max_length=8, help_text="high, medium, low or unscored")
    resolved = models.BigIntegerField(default=0)
    hits = models.BigIntegerField(default=0)
    error_sum = models.BigIntegerField(default=0)
    replaced = models.BigIntegerField(default=0)
    dropped = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hour", "band"], name="outcome_one_per_hour_band"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.band}: {self.resolved} resolved"

    @classmethod
    def add(cls, deltas: dict[tuple, tuple[int, int, int, int, int]]) -> None:
        _upsert_sums(cls, cls.KEY, cls.SUMS, deltas)


class WatchGroup(models.Model):
    """One set of things to watch, on behalf of someone in an upper app (issue 21: an
    alerts.WatchlistEntry owns one, and keeps `active` in step). Detection knows no owners or
    notes: the link points from alerts down to here, never from detection up."""

    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"watch group {self.pk}{'' if self.active else ' (off)'}"


class WatchTarget(models.Model):
    """What the ingest must look for on behalf of one watch group: an address (a plain entry's,
    or one derived from an extended key), or an entity name whose labelled addresses are
    watched. The ingest loads the union of the active groups' targets."""

    group = models.ForeignKey(WatchGroup, on_delete=models.CASCADE, related_name="targets")
    address = models.CharField(max_length=100, blank=True, default="")
    entity = models.CharField(max_length=100, blank=True, default="")
    # For an extended key: 0 receive / 1 change, and the child index.
    branch = models.PositiveSmallIntegerField(null=True, blank=True)
    index = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group", "address", "entity"], name="watch_target_once"
            ),
        ]
        indexes = [
            models.Index(fields=["address"], name="watch_target_by_address"),
        ]

    def __str__(self) -> str:
        return self.address or f"entity {self.entity}"
