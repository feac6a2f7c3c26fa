"""REST API for chat channels: /api/v1/chats/ (Discord and Slack hooks are created here; a
Telegram chat is linked by the deep link from POST /api/v1/chats/telegram-link/)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from alerts import delivery as engine
from alerts import telegram_bot
from alerts.api import (
    NOT_FOUND,
    UNAUTHENTICATED,
    DeliveryDetailSerializer,
    OwnedViewSetMixin,
    _crud_schema,
)
from alerts.http import check_url
from alerts.models import TELEGRAM_LINK_TTL, Channel, ChatEndpoint
from detection.api.serializers import ErrorSerializer
from whaleproject.api_errors import error_response

HOOK_SERVICES = (Channel.DISCORD.value, Channel.SLACK.value)


class ChatEndpointSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    service = serializers.ChoiceField(choices=HOOK_SERVICES)
    url = serializers.CharField(max_length=2000, write_only=True, required=False)
    display_url = serializers.CharField(source="short_url", read_only=True)

    class Meta:
        model = ChatEndpoint
        fields = [
            "id",
            "service",
            "label",
            "url",
            "display_url",
            "telegram_chat_id",
            "muted_until",
            "active",
            "disabled_reason",
            "consecutive_failures",
            "last_success_at",
            "last_failure_at",
            "created_at",
        ]
        read_only_fields = [
            "telegram_chat_id",
            "muted_until",
            "disabled_reason",
            "consecutive_failures",
            "last_success_at",
            "last_failure_at",
            "created_at",
        ]

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None:  # the service of an existing channel never changes
            fields["service"].read_only = True
        return fields

    def validate_url(self, value: str) -> str:
        try:
            check_url(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value.strip()

    def validate(self, attrs):
        if self.instance is None:
            owner = self.context["request"].user
            problem = ChatEndpoint.limit_problem(owner)
            if problem:
                raise serializers.ValidationError(problem)
            if not attrs.get("url"):
                raise serializers.ValidationError({"url": ["The incoming-webhook URL."]})
        elif "url" in attrs and self.instance.service == Channel.TELEGRAM:
            raise serializers.ValidationError({"url": ["A Telegram chat has no URL."]})
        return attrs

    def create(self, validated_data):
        return ChatEndpoint.objects.create(owner=self.context["request"].user, **validated_data)

    def update(self, instance, validated_data):
        activate = validated_data.pop("active", None)
        if activate is True and not instance.active:
            if instance.service == Channel.TELEGRAM and instance.disabled_reason.startswith(
                "unlinked"
            ):
                raise serializers.ValidationError(
                    {"active": ["This chat was unlinked; link it again with a new deep link."]}
                )
            instance.enable()
        elif activate is False and instance.active:
            instance.active = False
            instance.disabled_reason = "turned off by its owner"
        return super().update(instance, validated_data)


TELEGRAM_LINK = inline_serializer(
    "TelegramLink",
    {
        "deep_link": serializers.URLField(),
        "expires_at": serializers.DateTimeField(),
    },
)


@_crud_schema(ChatEndpointSerializer)
class ChatEndpointViewSet(OwnedViewSetMixin, viewsets.ModelViewSet):
    model = ChatEndpoint
    queryset = ChatEndpoint.objects.none()
    serializer_class = ChatEndpointSerializer

    @extend_schema(
        request=None,
        responses={201: DeliveryDetailSerializer, 401: UNAUTHENTICATED, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["post"])
    def test(self, request, id=None):
        """Send a test message now (one try, no retries) and return the delivery with its try."""
        delivery = engine.send_test_now(self.get_object())
        return Response(DeliveryDetailSerializer(delivery).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses={
            201: TELEGRAM_LINK,
            401: UNAUTHENTICATED,
            409: OpenApiResponse(ErrorSerializer, description="Telegram is not set up here"),
        },
    )
    @action(detail=False, methods=["post"], url_path="telegram-link")
    def telegram_link(self, request):
        """A one-time deep link: the Telegram chat that opens it and presses Start is linked."""
        link = telegram_bot.start_link(request.user)
        try:
            deep_link = telegram_bot.deep_link(link)
        except telegram_bot.TelegramNotConfigured as exc:
            link.delete()
            return error_response("telegram_unavailable", str(exc), status.HTTP_409_CONFLICT)
        expires_at = link.created_at + TELEGRAM_LINK_TTL
        return Response({"deep_link": deep_link, "expires_at": expires_at}, status=201)
