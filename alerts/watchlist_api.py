"""REST API of watchlists (issue 21): /api/v1/watchlist/ (entries, hits, CSV) and
/api/v1/private-labels/. Every queryset is the caller's own; anyone else's id is a 404."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FileUploadParser, MultiPartParser
from rest_framework.response import Response

from alerts.api import (
    INVALID,
    NOT_FOUND,
    UNAUTHENTICATED,
    DeliveryPagination,
    _crud_schema,
    _error,
)
from alerts.watchlists import (
    CsvImportError,
    Direction,
    EntryInput,
    PrivateLabel,
    WatchHit,
    WatchKind,
    WatchlistEntry,
    add_entries,
    build_entry,
    delete_entry,
    export_csv,
    import_csv,
)
from detection import watching
from detection.domain.addresses import AddressError, validate_address
from detection.summary import btc
from whaleproject.api_errors import error_response

UUID_PATTERN = r"[0-9a-fA-F-]{36}"


def _field_errors(exc: DjangoValidationError) -> serializers.ValidationError:
    renames = {"min_sats": "min_btc", "max_sats": "max_btc"}
    if hasattr(exc, "message_dict"):
        return serializers.ValidationError(
            {renames.get(k, k): v for k, v in exc.message_dict.items()}
        )
    return serializers.ValidationError(exc.messages)


class WatchlistEntrySerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    kind = serializers.ChoiceField(choices=WatchKind.choices)
    value = serializers.CharField(max_length=200)
    direction = serializers.ChoiceField(choices=Direction.choices, default=Direction.EITHER)
    min_btc = serializers.DecimalField(
        max_digits=16, decimal_places=8, required=False, allow_null=True
    )
    max_btc = serializers.DecimalField(
        max_digits=16, decimal_places=8, required=False, allow_null=True
    )
    min_fiat = serializers.DecimalField(
        max_digits=20, decimal_places=2, required=False, allow_null=True
    )
    max_fiat = serializers.DecimalField(
        max_digits=20, decimal_places=2, required=False, allow_null=True
    )
    fiat_currency = serializers.CharField(max_length=3, required=False, default="USD")
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    active = serializers.BooleanField(required=False, default=True)
    addresses_watched = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(read_only=True)

    def get_addresses_watched(self, entry) -> int:
        return entry.targets.exclude(address="").count()

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["min_btc"] = btc(instance.min_sats)
        data["max_btc"] = btc(instance.max_sats)
        return data

    def _entry(self, attrs) -> WatchlistEntry:
        try:
            return build_entry(
                self.context["request"].user,
                EntryInput(
                    kind=attrs["kind"],
                    value=attrs["value"],
                    direction=attrs.get("direction", Direction.EITHER),
                    min_btc=attrs.get("min_btc"),
                    max_btc=attrs.get("max_btc"),
                    note=attrs.get("note", ""),
                    min_fiat=attrs.get("min_fiat"),
                    max_fiat=attrs.get("max_fiat"),
                    fiat_currency=attrs.get("fiat_currency"),
                ),
            )
        except DjangoValidationError as exc:
            raise _field_errors(exc) from None

    def create(self, validated_data):
        entry = self._entry(validated_data)
        entry.active = validated_data.get("active", True)
        try:
            return add_entries(entry.owner, [entry])[0]
        except DjangoValidationError as exc:
            raise _field_errors(exc) from None

    @transaction.atomic
    def update(self, instance, validated_data):
        # What is watched (kind, value) is the entry's identity: change it by a new entry.
        for name in ("kind", "value"):
            if name in validated_data and validated_data[name] != getattr(instance, name):
                raise serializers.ValidationError(
                    {name: "Cannot be changed; delete the entry and add a new one."}
                )
        merged = {
            "kind": instance.kind,
            "value": instance.value,
            "direction": instance.direction,
            "min_btc": btc(instance.min_sats),
            "max_btc": btc(instance.max_sats),
            "min_fiat": instance.min_fiat,
            "max_fiat": instance.max_fiat,
            "fiat_currency": instance.fiat_currency,
            "note": instance.note,
            **validated_data,
        }
        checked = self._entry(merged)
        for name in (
            "direction",
            "min_sats",
            "max_sats",
            "min_fiat",
            "max_fiat",
            "fiat_currency",
            "note",
        ):
            setattr(instance, name, getattr(checked, name))
        instance.active = validated_data.get("active", instance.active)
        instance.save()
        transaction.on_commit(watching.bump_version)
        return instance


class WatchHitSerializer(serializers.ModelSerializer):
    entry = serializers.UUIDField(source="entry.public_id")
    entry_kind = serializers.CharField(source="entry.kind")
    entry_value = serializers.CharField(source="entry.value")
    event = serializers.CharField(source="event.kind")
    txid = serializers.CharField(source="event.whale.txid")
    status = serializers.CharField(source="event.whale.status")
    whale = serializers.SerializerMethodField()
    amount_btc = serializers.SerializerMethodField()
    occurred_at = serializers.DateTimeField(source="event.occurred_at")

    class Meta:
        model = WatchHit
        fields = [
            "entry",
            "entry_kind",
            "entry_value",
            "direction",
            "amount_btc",
            "event",
            "txid",
            "status",
            "whale",
            "occurred_at",
        ]
        read_only_fields = fields

    def get_amount_btc(self, hit) -> str:
        return btc(hit.amount_sats)

    def get_whale(self, hit) -> bool:
        """Also a whale (public), or a watch hit below the floor (yours only)."""
        return not hit.event.whale.watch_only


class HitPagination(DeliveryPagination):
    ordering = ("-created_at", "-id")


@_crud_schema(WatchlistEntrySerializer)
class WatchlistViewSet(viewsets.ModelViewSet):
    serializer_class = WatchlistEntrySerializer
    queryset = WatchlistEntry.objects.none()
    lookup_field = "public_id"
    lookup_url_kwarg = "id"
    lookup_value_regex = UUID_PATTERN

    def get_queryset(self):
        return WatchlistEntry.objects.filter(owner=self.request.user)

    def perform_destroy(self, instance):
        delete_entry(instance)

    @extend_schema(
        responses={
            200: WatchHitSerializer(many=True),
            400: _error("the cursor is invalid"),
            401: UNAUTHENTICATED,
        }
    )
    @action(detail=False, methods=["get"], pagination_class=HitPagination)
    def hits(self, request):
        """Your hits, newest first: which entry matched which transaction, in which direction."""
        hits = WatchHit.objects.filter(entry__owner=request.user).select_related(
            "entry", "event", "event__whale"
        )
        page = self.paginate_queryset(hits)
        return self.get_paginated_response(WatchHitSerializer(page, many=True).data)

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR, 401: UNAUTHENTICATED})
    @action(detail=False, methods=["get"], url_path="export")
    def export(self, request):
        response = HttpResponse(export_csv(request.user), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="watchlist.csv"'
        return response

    @extend_schema(
        request={"text/csv": OpenApiTypes.BINARY, "multipart/form-data": OpenApiTypes.BINARY},
        responses={201: WatchlistEntrySerializer(many=True), 400: INVALID, 401: UNAUTHENTICATED},
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[MultiPartParser, FileUploadParser],
    )
    def import_(self, request):
        """Add every entry of a CSV, or none: each bad line is named in `fields.csv`."""
        upload = request.data.get("file")
        if upload is None:
            return error_response(
                "invalid",
                "Send the CSV as the file of a multipart form or as the body.",
                fields={"file": ["This field is required."]},
            )
        limit = settings.WATCHLIST_CSV_MAX_BYTES
        size = getattr(upload, "size", None) or 0
        if size > limit:
            error = CsvImportError([f"file: {size:,} bytes is over the limit of {limit:,} bytes"])
            return _csv_refused(error)
        data = upload.read(limit + 1)
        try:
            entries = import_csv(request.user, data)
        except CsvImportError as exc:
            return _csv_refused(exc)
        return Response(
            WatchlistEntrySerializer(entries, many=True, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


def _csv_refused(exc: CsvImportError) -> Response:
    return error_response("invalid", str(exc), fields={"csv": exc.errors})


class PrivateLabelSerializer(serializers.ModelSerializer):
    class Meta:
        model = PrivateLabel
        fields = ["id", "address", "name", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_address(self, value: str) -> str:
        try:
            return validate_address(value.strip()).address
        except AddressError as exc:
            raise serializers.ValidationError(
                f"Not a mainnet Bitcoin address ({exc.reason})."
            ) from None

    def validate(self, attrs):
        owner = self.context["request"].user
        address = attrs.get("address", getattr(self.instance, "address", None))
        clash = PrivateLabel.objects.filter(owner=owner, address=address)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError({"address": "You already named this address."})
        return attrs

    def create(self, validated_data):
        return PrivateLabel.objects.create(owner=self.context["request"].user, **validated_data)


@_crud_schema(PrivateLabelSerializer)
class PrivateLabelViewSet(viewsets.ModelViewSet):
    serializer_class = PrivateLabelSerializer
    queryset = PrivateLabel.objects.none()

    def get_queryset(self):
        return PrivateLabel.objects.filter(owner=self.request.user)


__all__ = ["NOT_FOUND", "PrivateLabelViewSet", "WatchlistViewSet"]
