"""REST API representations of whales, their events and predictions, and the stats payload.

Amounts go out twice: an exact BTC decimal string (`*_btc`, never a float) and the satoshi integer
(`*_sat`). Times are ISO 8601 in UTC (TIME_ZONE is UTC, so DRF renders them with a `Z`).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from detection.models import WhaleEvent, WhaleTransaction
from detection.summary import btc

BTC_STRING_SCHEMA = {
    "type": "string",
    "pattern": r"^-?\d+\.\d{8}$",
    "example": "100.00000000",
    "description": "exact amount in BTC, 8 decimal places",
}


@extend_schema_field(BTC_STRING_SCHEMA)
class BtcAmountField(serializers.Field):
    """Satoshis rendered as an exact BTC decimal string."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value: int) -> str | None:
        return btc(value)


class BlankAsNullCharField(serializers.CharField):
    """Unlabelled entities are stored as "" and go out as null."""

    def __init__(self, **kwargs):
        kwargs.setdefault("read_only", True)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_representation(self, value: str) -> str | None:
        return value or None


_DATETIME = serializers.DateTimeField(read_only=True)


def _datetime(value):
    return None if value is None else _DATETIME.to_representation(value)


class WhaleSerializer(serializers.ModelSerializer):
    """A whale as listed: everything but the input and output lists.

    The fields below describe the representation (the OpenAPI schema is built from them);
    `to_representation` writes the same dict directly, because DRF's generic walk over 24
    fields per row was the larger part of a list request's time. tests/api/
    test_stats_rollup_whale_rows.py holds the two equal.
    """

    chain_txid = serializers.CharField(
        read_only=True, help_text="txid of the first transaction of its RBF chain"
    )
    replaced_by = serializers.CharField(
        source="replaced_by_txid",
        read_only=True,
        allow_null=True,
        help_text="txid of the transaction that replaced it, if any",
    )
    value_btc = BtcAmountField(source="value", help_text="sum of outputs")
    value_sat = serializers.IntegerField(source="value", read_only=True)
    transfer_btc = BtcAmountField(source="transfer", help_text="value less change")
    transfer_sat = serializers.IntegerField(source="transfer", read_only=True)
    fee_btc = BtcAmountField(source="fee", allow_null=True, help_text="null when unknown")
    fee_sat = serializers.IntegerField(source="fee", read_only=True, allow_null=True)
    fee_rate = serializers.FloatField(
        source="best_fee_rate",
        read_only=True,
        allow_null=True,
        help_text="sat/vB, package-aware when known",
    )
    from_entity = BlankAsNullCharField()
    to_entity = BlankAsNullCharField()
    shape_tags = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = WhaleTransaction
        fields = [
            "txid",
            "chain_txid",
            "status",
            "first_seen_at",
            "seen_in_mempool",
            "value_btc",
            "value_sat",
            "transfer_btc",
            "transfer_sat",
            "fee_btc",
            "fee_sat",
            "fee_rate",
            "vsize",
            "flow",
            "from_entity",
            "to_entity",
            "shape_tags",
            "conflict",
            "conflict_winner",
            "replaced_by",
            "latest_urgency",
            "confirmed_height",
            "confirmed_at",
            "blocks_waited",
        ]
        read_only_fields = fields

    def to_representation(self, whale: WhaleTransaction) -> dict:
        fee_rate = whale.best_fee_rate
        return {
            "txid": whale.txid,
            "chain_txid": whale.chain_txid,
            "status": whale.status,
            "first_seen_at": _datetime(whale.first_seen_at),
            "seen_in_mempool": bool(whale.seen_in_mempool),
            "value_btc": btc(whale.value),
            "value_sat": int(whale.value),
            "transfer_btc": btc(whale.transfer),
            "transfer_sat": int(whale.transfer),
            "fee_btc": None if whale.fee is None else btc(whale.fee),
            "fee_sat": None if whale.fee is None else int(whale.fee),
            "fee_rate": None if fee_rate is None else float(fee_rate),
            "vsize": int(whale.vsize),
            "flow": whale.flow,
            "from_entity": whale.from_entity or None,
            "to_entity": whale.to_entity or None,
            "shape_tags": [None if tag is None else str(tag) for tag in whale.shape_tags],
            "conflict": bool(whale.conflict),
            "conflict_winner": None
            if whale.conflict_winner is None
            else bool(whale.conflict_winner),
            "replaced_by": whale.replaced_by_txid,
            "latest_urgency": None if whale.latest_urgency is None else float(whale.latest_urgency),
            "confirmed_height": whale.confirmed_height,
            "confirmed_at": _datetime(whale.confirmed_at),
            "blocks_waited": whale.blocks_waited,
        }


class WhaleEventSerializer(serializers.ModelSerializer):
    details = serializers.SerializerMethodField()

    class Meta:
        model = WhaleEvent
        fields = ["id", "kind", "sequence", "occurred_at", "details"]
        read_only_fields = fields

    def get_details(self, event: WhaleEvent) -> dict:
        # The ingest source may be a private node URL; /health/ shows it to staff only, and the
        # event details are no place to leak it.
        return {k: v for k, v in event.details.items() if k != "source"}


class PredictionSerializer(serializers.Serializer):
    made_at = serializers.DateTimeField()
    tip_height = serializers.IntegerField(allow_null=True)
    fee_rate = serializers.FloatField(allow_null=True)
    projected_block = serializers.IntegerField(allow_null=True)
    predicted_blocks = serializers.IntegerField(allow_null=True)
    fee_percentile = serializers.FloatField(allow_null=True)
    urgency = serializers.FloatField(allow_null=True)
    band = BlankAsNullCharField()
    eta_seconds = serializers.IntegerField(allow_null=True)
    may_not_confirm_soon = serializers.BooleanField()
    may_be_purged = serializers.BooleanField()
    fee_spike = serializers.BooleanField()
    outcome = serializers.CharField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolved_height = serializers.IntegerField(allow_null=True)
    actual_blocks = serializers.IntegerField(allow_null=True)
    hit = serializers.BooleanField(allow_null=True)
    abs_error = serializers.IntegerField(allow_null=True)


class TxInputSerializer(serializers.Serializer):
    txid = serializers.CharField(allow_null=True)
    vout = serializers.IntegerField(allow_null=True)
    address = serializers.CharField(allow_null=True)
    value_btc = BtcAmountField(source="value", allow_null=True)
    value_sat = serializers.IntegerField(source="value", allow_null=True)
    label = serializers.DictField(allow_null=True)


class TxOutputSerializer(serializers.Serializer):
    address = serializers.CharField(allow_null=True)
    script_type = serializers.CharField(allow_null=True)
    value_btc = BtcAmountField(source="value", allow_null=True)
    value_sat = serializers.IntegerField(source="value", allow_null=True)
    label = serializers.DictField(allow_null=True)


class ChainMemberSerializer(serializers.Serializer):
    txid = serializers.CharField()
    status = serializers.CharField()
    first_seen_at = serializers.DateTimeField()
    replaced_by = serializers.CharField(allow_null=True)


class WhaleDetailSerializer(WhaleSerializer):
    """One whale with its inputs, outputs, timeline, predictions and RBF chain."""

    inputs = TxInputSerializer(many=True, read_only=True)
    outputs = TxOutputSerializer(many=True, read_only=True)
    events = WhaleEventSerializer(many=True, read_only=True, source="timeline")
    predictions = PredictionSerializer(many=True, read_only=True, source="prediction_history")
    chain = ChainMemberSerializer(
        many=True,
        read_only=True,
        source="chain_members_in_order",
        help_text="every transaction of its RBF chain, oldest first (itself included)",
    )
    latest_txid = serializers.CharField(
        read_only=True,
        source="chain_latest_txid",
        help_text="the chain's newest transaction: follow replaced_by to its end",
    )

    # one whale per request: DRF's generic walk over the fields is cheap enough here
    to_representation = serializers.ModelSerializer.to_representation

    class Meta(WhaleSerializer.Meta):
        fields = [
            *WhaleSerializer.Meta.fields,
            "weight",
            "effective_fee_rate",
            "has_prevouts",
            "confirmed_hash",
            "latest_txid",
            "inputs",
            "outputs",
            "events",
            "predictions",
            "chain",
        ]
        read_only_fields = fields


# --- stats (documentation shapes; the payload is built in detection.api.stats) ----------------


class FlowTotalsSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    transfer_btc = serializers.CharField()
    transfer_sat = serializers.IntegerField()


class VolumeBucketSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    count = serializers.IntegerField()
    value_btc = serializers.CharField()
    value_sat = serializers.IntegerField()
    transfer_btc = serializers.CharField()
    transfer_sat = serializers.IntegerField()
    flows = serializers.DictField(child=FlowTotalsSerializer(), help_text="keyed by flow")


class BandAccuracySerializer(serializers.Serializer):
    resolved = serializers.IntegerField(help_text="confirmed predictions (can hit or miss)")
    hits = serializers.IntegerField()
    hit_rate = serializers.FloatField(allow_null=True)
    mean_abs_error = serializers.FloatField(allow_null=True, help_text="blocks")
    replaced = serializers.IntegerField()
    dropped = serializers.IntegerField()


class AccuracyWindowSerializer(serializers.Serializer):
    seconds = serializers.FloatField()
    overall = BandAccuracySerializer()
    by_band = serializers.DictField(
        child=BandAccuracySerializer(), help_text="high, medium, low, unscored"
    )


class CoverageSerializer(serializers.Serializer):
    mined = serializers.IntegerField()
    seen_first = serializers.IntegerField()
    coverage = serializers.FloatField(allow_null=True)


class SourceHealthSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    state = serializers.CharField(help_text="fresh, stale, absent or unknown")
    age_seconds = serializers.FloatField(required=False)
    # as the ingest process reports them in its heartbeat
    connected = serializers.JSONField(required=False)
    memory_level = serializers.JSONField(required=False)
    source = serializers.JSONField(required=False, help_text="staff only")


class StatsSerializer(serializers.Serializer):
    bucket = serializers.ChoiceField(choices=["hour", "day"])
    days = serializers.IntegerField()
    since = serializers.DateTimeField(help_text="start of the oldest bucket")
    until = serializers.DateTimeField(help_text="when the figures were computed")
    totals = VolumeBucketSerializer()
    volumes = VolumeBucketSerializer(many=True)
    accuracy = serializers.DictField(child=AccuracyWindowSerializer(), help_text="1h, 24h, 7d, 90d")
    coverage = CoverageSerializer()
    source = SourceHealthSerializer()


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()
