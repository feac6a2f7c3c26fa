"""REST API of the alerts app: subscriptions, webhook endpoints, deliveries.

Objects are addressed by their public UUID. Every queryset is filtered by owner, so another
user's object is a 404, exactly like one that does not exist.
"""

from __future__ import annotations

from base64 import b64decode
from datetime import UTC
from decimal import Decimal
from urllib.parse import parse_qs

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from alerts import delivery as engine
from alerts.forms import (
    FLOW_CHOICES,
    KIND_CHOICES,
)
from alerts.http import check_url
from alerts.models import (
    ChatEndpoint,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Subscription,
    WebhookEndpoint,
    sats_from_btc,
)
from alerts.views import redeliver_problem
from detection.api.serializers import ErrorSerializer
from detection.api.views import StrictQueryParamsMixin
from detection.summary import btc
from whaleproject.api_errors import error_response


class OwnedChatField(serializers.SlugRelatedField):
    """A chat channel (Telegram chat, Discord or Slack hook) by public id, among the caller's."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="public_id", **kwargs)

    def get_queryset(self):
        return ChatEndpoint.objects.filter(owner=self.context["request"].user)

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError:
            raise serializers.ValidationError(f"No chat channel with id {data!r}.") from None


class OwnedEndpointField(serializers.SlugRelatedField):
    """A webhook endpoint by public id, looked up among the caller's own endpoints only."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="public_id", **kwargs)

    def get_queryset(self):
        return WebhookEndpoint.objects.filter(owner=self.context["request"].user)

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError:
            raise serializers.ValidationError(f"No webhook endpoint with id {data!r}.") from None


@extend_schema_field(
    {
        "type": "string",
        "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$",
        "example": "22:00",
    }
)
class QuietTimeField(serializers.TimeField):
    """A local wall-clock time, answered as HH:MM. OpenAPI's `format: time` means a full
    RFC 3339 time with seconds and offset, which is neither what is sent nor what is stored."""

    def __init__(self, **kwargs):
        super().__init__(format="%H:%M", **kwargs)


class SubscriptionSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    min_btc = serializers.DecimalField(max_digits=16, decimal_places=8)
    max_btc = serializers.DecimalField(
        max_digits=16, decimal_places=8, required=False, allow_null=True
    )
    flows = serializers.ListField(
        child=serializers.ChoiceField(choices=FLOW_CHOICES), required=False
    )
    entities = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=50
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=KIND_CHOICES), required=False, source="kinds"
    )
    min_urgency = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    webhooks = OwnedEndpointField(many=True, required=False)
    chats = OwnedChatField(many=True, required=False)
    quiet_start = QuietTimeField(required=False, allow_null=True)
    quiet_end = QuietTimeField(required=False, allow_null=True)

    class Meta:
        model = Subscription
        fields = [
            "id",
            "name",
            "active",
            "min_btc",
            "max_btc",
            "flows",
            "entities",
            "min_urgency",
            "events",
            "notify_unseen_confirmed",
            "email",
            "webhooks",
            "chats",
            "quiet_start",
            "quiet_end",
            "max_per_hour",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        # exact decimal strings, like every BTC amount the API returns
        data["min_btc"] = btc(instance.min_sats)
        data["max_btc"] = btc(instance.max_sats)
        return data

    def validate_min_btc(self, value: Decimal) -> Decimal:
        if value < Decimal(str(settings.WHALE_MIN_BTC)):
            raise serializers.ValidationError(
                f"Cannot be below this portal's floor of {settings.WHALE_MIN_BTC:g} BTC."
            )
        return value

    def validate(self, attrs):
        request = self.context["request"]
        problem = Subscription.limit_problem(request.user) if self.instance is None else None
        email = attrs.get("email", self.instance.email if self.instance else True)
        webhooks = attrs.get(
            "webhooks", list(self.instance.webhooks.all()) if self.instance else []
        )
        chats = attrs.get("chats", list(self.instance.chats.all()) if self.instance else [])
        problem = problem or Subscription.channel_problem(email, webhooks, chats)
        if problem:
            raise serializers.ValidationError(problem)
        return attrs

    def _apply(self, subscription: Subscription, attrs: dict) -> list | None:
        self._chats = attrs.pop("chats", None)
        webhooks = attrs.pop("webhooks", None)
        if "min_btc" in attrs:
            subscription.min_sats = sats_from_btc(attrs.pop("min_btc"))
        if "max_btc" in attrs:
            value = attrs.pop("max_btc")
            subscription.max_sats = None if value is None else sats_from_btc(value)
        if "kinds" in attrs:
            subscription.set_kinds(attrs.pop("kinds"))
        for name, value in attrs.items():
            setattr(subscription, name, value)
        try:
            subscription.full_clean(exclude=["owner"])
        except DjangoValidationError as exc:
            renames = {"min_sats": "min_btc", "max_sats": "max_btc", "notify_seen": "events"}
            raise serializers.ValidationError(
                {renames.get(k, k): v for k, v in exc.message_dict.items()}
            ) from None
        return webhooks

    @transaction.atomic
    def create(self, validated_data):
        subscription = Subscription(owner=self.context["request"].user)
        webhooks = self._apply(subscription, validated_data)
        subscription.save()
        if webhooks:
            subscription.webhooks.set(webhooks)
        if self._chats:
            subscription.chats.set(self._chats)
        return subscription

    @transaction.atomic
    def update(self, instance, validated_data):
        webhooks = self._apply(instance, validated_data)
        instance.save()
        if webhooks is not None:
            instance.webhooks.set(webhooks)
        if self._chats is not None:
            instance.chats.set(self._chats)
        return instance


class WebhookEndpointSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "active",
            "disabled_reason",
            "consecutive_failures",
            "last_success_at",
            "last_failure_at",
            "created_at",
        ]
        read_only_fields = [
            "disabled_reason",
            "consecutive_failures",
            "last_success_at",
            "last_failure_at",
            "created_at",
        ]

    def validate_url(self, value: str) -> str:
        try:
            check_url(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value.strip()

    def validate(self, attrs):
        request = self.context["request"]
        problem = WebhookEndpoint.limit_problem(request.user) if self.instance is None else None
        if problem:
            raise serializers.ValidationError(problem)
        return attrs

    def create(self, validated_data):
        return WebhookEndpoint.objects.create(owner=self.context["request"].user, **validated_data)

    def update(self, instance, validated_data):
        activate = validated_data.pop("active", None)
        if activate is True and not instance.active:
            instance.enable()
        elif activate is False and instance.active:
            instance.active = False
            instance.disabled_reason = "disabled by its owner"
        return super().update(instance, validated_data)


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    """Detail views show the signing secret; lists never do."""

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = [*WebhookEndpointSerializer.Meta.read_only_fields, "secret"]


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = [
            "number",
            "started_at",
            "outcome",
            "status_code",
            "error",
            "duration_ms",
            "response_excerpt",
            "next_attempt_at",
        ]


class DeliverySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    webhook_id = serializers.CharField(source="message_id", read_only=True)
    event_id = serializers.SerializerMethodField()
    subscription = serializers.SerializerMethodField()
    endpoint = serializers.SerializerMethodField()
    chat = serializers.SerializerMethodField()
    attempts = serializers.IntegerField(read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "webhook_id",
            "kind",
            "channel",
            "event_id",
            "subscription",
            "endpoint",
            "chat",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "last_duration_ms",
            "created_at",
            "delivered_at",
        ]
        read_only_fields = fields

    def get_event_id(self, delivery) -> str | None:
        return delivery.message_id if delivery.event_id else None

    def get_subscription(self, delivery) -> str | None:
        return str(delivery.subscription.public_id) if delivery.subscription_id else None

    def get_endpoint(self, delivery) -> str | None:
        return str(delivery.endpoint.public_id) if delivery.endpoint_id else None

    def get_chat(self, delivery) -> str | None:
        return str(delivery.chat.public_id) if delivery.chat_id else None


class DeliveryDetailSerializer(DeliverySerializer):
    attempt_log = DeliveryAttemptSerializer(source="attempt_set", many=True, read_only=True)
    payload = serializers.JSONField(source="body", read_only=True)

    class Meta(DeliverySerializer.Meta):
        fields = [*DeliverySerializer.Meta.fields, "payload", "attempt_log"]
        read_only_fields = fields


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


# Every answer the views give is in the schema, errors included, so clients (and the schema
# test) can rely on it: the error bodies are the one shape of whaleproject.api_errors.
UNAUTHENTICATED = _error("no valid JWT or session")
NOT_FOUND = _error("no such object among yours")
INVALID = _error("the body is invalid; `fields` names each bad field")
CONFLICT = _error("this delivery cannot be sent again now")


def _crud_schema(serializer, detail_serializer=None):
    """Documented answers of a ModelViewSet's six actions."""
    detail_serializer = detail_serializer or serializer
    read = {401: UNAUTHENTICATED}
    return extend_schema_view(
        list=extend_schema(responses={200: serializer(many=True), **read}),
        create=extend_schema(responses={201: detail_serializer, 400: INVALID, **read}),
        retrieve=extend_schema(responses={200: detail_serializer, 404: NOT_FOUND, **read}),
        update=extend_schema(
            responses={200: detail_serializer, 400: INVALID, 404: NOT_FOUND, **read}
        ),
        partial_update=extend_schema(
            responses={200: detail_serializer, 400: INVALID, 404: NOT_FOUND, **read}
        ),
        destroy=extend_schema(responses={204: None, 404: NOT_FOUND, **read}),
    )


class OwnedViewSetMixin:
    lookup_field = "public_id"
    lookup_url_kwarg = "id"
    model: type

    def get_queryset(self):
        return self.model.objects.filter(owner=self.request.user)


@_crud_schema(SubscriptionSerializer)
class SubscriptionViewSet(OwnedViewSetMixin, viewsets.ModelViewSet):
    model = Subscription
    queryset = Subscription.objects.none()  # for the schema; get_queryset filters by owner
    serializer_class = SubscriptionSerializer

    def get_queryset(self):
        return super().get_queryset().prefetch_related("webhooks", "chats")


@_crud_schema(WebhookEndpointSerializer, WebhookEndpointWithSecretSerializer)
class WebhookEndpointViewSet(OwnedViewSetMixin, viewsets.ModelViewSet):
    model = WebhookEndpoint
    queryset = WebhookEndpoint.objects.none()

    def get_serializer_class(self):
        if self.action == "list":
            return WebhookEndpointSerializer
        return WebhookEndpointWithSecretSerializer

    @extend_schema(
        request=None,
        responses={201: DeliveryDetailSerializer, 401: UNAUTHENTICATED, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["post"])
    def test(self, request, id=None):
        """Send a test event now (one try, no retries) and return the delivery with its try."""
        delivery = engine.send_test_now(self.get_object())
        return Response(DeliveryDetailSerializer(delivery).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses={
            200: WebhookEndpointWithSecretSerializer,
            401: UNAUTHENTICATED,
            404: NOT_FOUND,
        },
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, id=None):
        """New signing secret; the old one keeps signing alongside it for 24 hours."""
        endpoint = self.get_object()
        endpoint.rotate_secret()
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data)


class DeliveryPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50

    def decode_cursor(self, request):
        # DRF answers an unreadable cursor with 404, and reads one that is not base64 at all
        # ("!!!") as no cursor, restarting at the first page. Both are a bad parameter.
        encoded = request.query_params.get(self.cursor_query_param)
        try:
            if encoded is not None and not parse_qs(
                b64decode(encoded.encode("ascii"), validate=True).decode("ascii")
            ):
                raise ValueError("no cursor fields")
            cursor = super().decode_cursor(request)
            if cursor is not None and cursor.position is not None:
                # The position goes into a created_at comparison as given; a forged one
                # ("p=2026") would fail only inside the query, as a 500.
                moment = parse_datetime(cursor.position)
                if moment is None or moment.tzinfo is None:
                    raise ValueError("not a position of ours")
                moment.astimezone(UTC)
            return cursor
        except (exceptions.NotFound, ValueError, OverflowError):
            raise exceptions.ValidationError({"cursor": ["Invalid cursor."]}) from None


CHANNELS = ["email", "webhook", "telegram", "discord", "slack"]
DELIVERY_FILTERS = [
    OpenApiParameter("status", OpenApiTypes.STR, enum=DeliveryStatus.values),
    OpenApiParameter("channel", OpenApiTypes.STR, enum=CHANNELS),
]


@extend_schema_view(
    list=extend_schema(
        parameters=DELIVERY_FILTERS,
        responses={
            200: DeliverySerializer(many=True),
            400: _error("a query parameter is invalid or unknown; `fields` names it"),
            401: UNAUTHENTICATED,
        },
    ),
    retrieve=extend_schema(
        responses={
            200: DeliveryDetailSerializer,
            400: _error("a query parameter is unknown; `fields` names it"),
            401: UNAUTHENTICATED,
            404: NOT_FOUND,
        }
    ),
)
class DeliveryViewSet(StrictQueryParamsMixin, OwnedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    model = Delivery
    queryset = Delivery.objects.none()
    pagination_class = DeliveryPagination
    allowed_query_params = frozenset({"status", "channel", "cursor", "format"})

    def get_queryset(self):
        deliveries = super().get_queryset().select_related("subscription", "endpoint", "chat")
        params = self.request.query_params
        # A filter value we do not know is refused, never ignored: `status=faild` must not
        # answer with every delivery, as if no filter had been asked for.
        for name, allowed in (("status", DeliveryStatus.values), ("channel", CHANNELS)):
            value = params.get(name)
            if value is not None and value not in allowed:
                raise exceptions.ValidationError(
                    {name: [f"Unknown value; one of: {', '.join(allowed)}."]}
                )
            if value is not None:
                deliveries = deliveries.filter(**{name: value})
        if self.action != "list":
            deliveries = deliveries.select_related("event__alert_fanout").prefetch_related(
                "attempt_set"
            )
        return deliveries

    def get_serializer_class(self):
        return DeliverySerializer if self.action == "list" else DeliveryDetailSerializer

    @extend_schema(
        request=None,
        responses={
            202: DeliveryDetailSerializer,
            401: UNAUTHENTICATED,
            404: NOT_FOUND,
            409: CONFLICT,
        },
    )
    @action(detail=True, methods=["post"])
    def redeliver(self, request, id=None):
        """Queue the delivery again now, with the same webhook-id."""
        delivery = self.get_object()
        problem = redeliver_problem(delivery)
        if problem:
            return error_response("conflict", problem, status.HTTP_409_CONFLICT)
        with transaction.atomic():
            engine.redeliver(delivery)
        delivery.refresh_from_db()
        return Response(DeliveryDetailSerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
