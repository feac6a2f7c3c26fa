"""Whale records: labels, whale transactions, their lifecycle events, predictions and blocks.

Amounts are integer satoshis. Domain computations (classification, urgency, accuracy) live in
detection.domain and import no Django; the models call into them.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from detection.txshape import SATS_PER_BTC


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
    EXCHANGE_INFLOW = "exchange_inflow"
    EXCHANGE_OUTFLOW = "exchange_outflow"
    INTER_EXCHANGE = "inter_exchange"
    EXCHANGE_INTERNAL = "exchange_internal"
    UNKNOWN = "unknown"


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

    class Meta:
        indexes = [
            # reorg detection: "which block do we hold at this height?"
            models.Index(fields=["height"], name="block_by_height"),
        ]

    def __str__(self) -> str:
        return f"{self.height} {self.hash[:16]}…"


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
            # entity + date range filters
            models.Index(fields=["from_entity", "-first_seen_at"], name="whale_by_from_entity"),
            models.Index(fields=["to_entity", "-first_seen_at"], name="whale_by_to_entity"),
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
