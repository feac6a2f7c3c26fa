"""REST API views under /api/v1/ (docs/API.md). Thin: queries, figures and rendering live in
detection.api.filters, detection.api.pagination, detection.api.stats and detection.api.csv.

Every view but the token pair needs a logged-in user (JWT or session); whales are public data to
every logged-in user. Unknown or empty query parameters are refused (400) rather than ignored,
so a typo such as `min_bt=500` cannot pass for an unfiltered list.
"""

from __future__ import annotations

import re

from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from detection.api import stats as api_stats
from detection.api.csv import CsvRenderer, whales_csv_response
from detection.api.filters import BTC_PATTERN, URGENCY_BANDS, USD_PATTERN, WhaleFilter
from detection.api.pagination import NewestFirstCursorPagination, decode_cursor
from detection.api.serializers import (
    ErrorSerializer,
    StatsSerializer,
    WhaleDetailSerializer,
    WhaleSerializer,
)
from detection.api.throttling import (
    ExportRateLimit,
    ReadRateLimit,
    TokenObtainRateLimit,
    TokenRefreshRateLimit,
)
from detection.models import Flow, WhaleStatus, WhaleTransaction

TXID_RE = re.compile(r"[0-9a-f]{64}")


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


BAD_REQUEST = _error("a query parameter is invalid or unknown; `fields` names it")
UNAUTHENTICATED = _error("no valid JWT or session")
THROTTLED = _error("rate limit reached; see the Retry-After header")
# Errors are JSON even when the success response is CSV.
READ_ERRORS = {
    (400, "application/json"): BAD_REQUEST,
    (401, "application/json"): UNAUTHENTICATED,
    (429, "application/json"): THROTTLED,
}
TOKEN_PAIR = inline_serializer(
    "TokenPair",
    {
        "access": serializers.CharField(help_text="JWT, 15 minutes"),
        "refresh": serializers.CharField(help_text="JWT, 7 days, usable once"),
    },
)


class StrictQueryParamsMixin:
    """Refuses query parameters the view does not know, after authentication and rate limits."""

    allowed_query_params: frozenset[str] = frozenset({"format"})
    unknown_format = False

    def perform_content_negotiation(self, request, force=False):
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            # DRF answers an unknown ?format= with 404 before authenticating; make it a 400
            # naming the parameter, raised after authentication like every other bad parameter.
            self.unknown_format = True
            return JSONRenderer(), JSONRenderer.media_type

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if self.unknown_format:
            formats = ", ".join(r.format for r in self.get_renderers() if r.format != "api")
            raise ValidationError({"format": [f"Unknown format; one of: {formats}."]})
        unknown = sorted(set(request.query_params) - self.allowed_query_params)
        if unknown:
            raise ValidationError({name: ["Unknown query parameter."] for name in unknown})
        # `flow=banana&flow=unknown` would be filtered by the last value only, the first
        # silently dropped: the same "plausible but wrong list" as an ignored typo.
        repeated = sorted(name for name, values in request.query_params.lists() if len(values) > 1)
        if repeated:
            raise ValidationError({name: ["Give this parameter once."] for name in repeated})
        # An empty value would otherwise mean "no filter" to django-filter and "the default" to
        # DRF; one rule for every parameter is easier to document: leave it out instead.
        empty = sorted(name for name, value in request.query_params.items() if value == "")
        if empty:
            raise ValidationError({name: ["May not be empty; leave it out."] for name in empty})


def whale_rows():
    """Whales with their chain's and replacement's txids; inputs and outputs left behind."""
    return (
        WhaleTransaction.objects.defer("inputs", "outputs", "source")
        .annotate(chain_txid=Coalesce(F("chain__txid"), F("txid")))
        .annotate(replaced_by_txid=F("replaced_by__txid"))
    )


# --- auth -------------------------------------------------------------------------------------


@extend_schema(
    tags=["auth"],
    responses={
        200: TOKEN_PAIR,
        400: _error("username or password missing"),
        401: _error("wrong username or password"),
        429: THROTTLED,
    },
)
class TokenObtainView(TokenObtainPairView):
    """An access token (15 minutes) and a refresh token (7 days) for a username and password."""

    throttle_classes = [TokenObtainRateLimit]


@extend_schema(
    tags=["auth"],
    responses={
        200: TOKEN_PAIR,
        400: _error("refresh token missing"),
        401: _error("refresh token invalid, expired or already used"),
        429: THROTTLED,
    },
)
class TokenRefreshRotateView(TokenRefreshView):
    """A new access token and a new refresh token; the refresh token sent is blacklisted."""

    throttle_classes = [TokenRefreshRateLimit]


# --- whales -----------------------------------------------------------------------------------

WHALE_LIST_PARAMETERS = [
    OpenApiParameter(
        "min_btc", OpenApiTypes.STR, description="value at least, BTC", pattern=BTC_PATTERN
    ),
    OpenApiParameter(
        "max_btc", OpenApiTypes.STR, description="value at most, BTC", pattern=BTC_PATTERN
    ),
    OpenApiParameter(
        "min_moved_btc",
        OpenApiTypes.STR,
        description="moved (value less estimated change) at least, BTC",
        pattern=BTC_PATTERN,
    ),
    OpenApiParameter(
        "min_usd",
        OpenApiTypes.STR,
        description="value in USD at detection at least; whales without a price never match",
        pattern=USD_PATTERN,
    ),
    OpenApiParameter("flow", OpenApiTypes.STR, enum=Flow.values),
    OpenApiParameter(
        "entity",
        OpenApiTypes.STR,
        description="sending or receiving entity (exact, case-sensitive)",
        pattern=r"^.{1,100}$",
    ),
    OpenApiParameter("status", OpenApiTypes.STR, enum=WhaleStatus.values),
    OpenApiParameter(
        "min_urgency",
        {"type": "number", "minimum": 0, "maximum": 1},
        description="latest prediction's urgency at least",
    ),
    OpenApiParameter(
        "urgency",
        OpenApiTypes.STR,
        enum=[value for value, _ in URGENCY_BANDS],
        description="latest prediction's urgency band, or unscored (no prediction with a score)",
    ),
    OpenApiParameter(
        "since", OpenApiTypes.DATETIME, description="first seen at or after (ISO 8601)"
    ),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="first seen before (ISO 8601)"),
    OpenApiParameter(
        "format",
        OpenApiTypes.STR,
        enum=["json", "csv"],
        description="csv: every matching row (no paging), streamed",
    ),
]


@extend_schema(
    tags=["whales"],
    parameters=WHALE_LIST_PARAMETERS,
    responses={
        (200, "application/json"): WhaleSerializer(many=True),
        (200, "text/csv"): OpenApiTypes.STR,
        **READ_ERRORS,
    },
)
class WhaleListView(StrictQueryParamsMixin, generics.ListAPIView):
    """Whales newest first (first_seen_at, then id), filtered; cursor pages or one CSV."""

    serializer_class = WhaleSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = WhaleFilter
    pagination_class = NewestFirstCursorPagination
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CsvRenderer]
    throttle_classes = [ReadRateLimit, ExportRateLimit]
    allowed_query_params = frozenset({*WhaleFilter.base_filters, "cursor", "page_size", "format"})

    def get_queryset(self):
        return whale_rows()

    def list(self, request, *args, **kwargs):
        if request.accepted_renderer.format == "csv":
            # The export ignores paging, but a bad page_size or cursor is still refused like
            # any other parameter the API cannot read.
            self.paginator.get_page_size(request)
            if request.query_params.get("cursor"):
                decode_cursor(request.query_params["cursor"])
            return whales_csv_response(
                self.filter_queryset(self.get_queryset()).order_by("-first_seen_at", "-id")
            )
        return super().list(request, *args, **kwargs)

    def handle_exception(self, exc):
        # Errors are JSON whatever format was asked for.
        renderer = getattr(self.request, "accepted_renderer", None)
        if renderer is not None and renderer.format == "csv":
            self.request.accepted_renderer = JSONRenderer()
            self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)


@extend_schema(
    tags=["whales"],
    parameters=[
        OpenApiParameter(
            "txid", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=r"^[0-9a-fA-F]{64}$"
        )
    ],
    responses={
        200: WhaleDetailSerializer,
        (404, "application/json"): _error("no whale with this txid"),
        **READ_ERRORS,
    },
)
class WhaleDetailView(StrictQueryParamsMixin, generics.RetrieveAPIView):
    """One whale with inputs, outputs, events, predictions and its RBF chain.

    A replaced transaction is its own row and answers here with status `replaced`, its
    `replaced_by`, the whole `chain` and `latest_txid` (the chain's current transaction).
    """

    serializer_class = WhaleDetailSerializer
    throttle_classes = [ReadRateLimit]

    def get_object(self):
        txid = self.kwargs["txid"].lower()
        whale = (
            whale_rows().defer(None).filter(txid=txid).first() if TXID_RE.fullmatch(txid) else None
        )
        if whale is None:
            raise NotFound(f"No whale with txid {self.kwargs['txid'][:64]}.")
        whale.timeline = list(whale.events.order_by("occurred_at", "sequence", "id"))
        whale.prediction_history = list(whale.predictions.order_by("made_at", "id"))
        root_id = whale.chain_id or whale.pk
        members = [
            {
                "txid": row["txid"],
                "status": row["status"],
                "first_seen_at": row["first_seen_at"],
                "replaced_by": row["replaced_by_txid"],
            }
            for row in WhaleTransaction.objects.filter(Q(pk=root_id) | Q(chain_id=root_id))
            .order_by("first_seen_at", "id")
            .values("txid", "status", "first_seen_at", replaced_by_txid=F("replaced_by__txid"))
        ]
        whale.chain_members_in_order = members
        whale.chain_latest_txid = _follow_replacements(whale.txid, members)
        return whale


def _follow_replacements(txid: str, members: list[dict]) -> str:
    replaced_by = {m["txid"]: m["replaced_by"] for m in members}
    seen = {txid}
    while replaced_by.get(txid) and replaced_by[txid] not in seen:
        txid = replaced_by[txid]
        seen.add(txid)
    return txid


# --- stats ------------------------------------------------------------------------------------


class StatsQuerySerializer(serializers.Serializer):
    bucket = serializers.ChoiceField(
        choices=list(api_stats.BUCKET_SIZES),
        default=api_stats.DEFAULT_BUCKET,
        help_text="size of the volume buckets",
    )
    days = serializers.IntegerField(
        min_value=1,
        max_value=api_stats.MAX_DAYS,
        default=api_stats.DEFAULT_DAYS,
        help_text="how many days back, the current day included",
    )


@extend_schema(
    tags=["stats"],
    parameters=[StatsQuerySerializer],
    responses={200: StatsSerializer, **READ_ERRORS},
)
class StatsView(StrictQueryParamsMixin, APIView):
    """Volumes and flows per hour or day, prediction accuracy by urgency band, coverage, source.

    Accuracy windows (1h, 24h, 7d, 90d) are shared by all users and cached for a minute.
    """

    throttle_classes = [ReadRateLimit]
    allowed_query_params = frozenset({"bucket", "days", "format"})

    def get(self, request):
        query = StatsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        payload = api_stats.stats_payload(
            bucket=query.validated_data["bucket"],
            days=query.validated_data["days"],
            show_source=request.user.is_staff,
        )
        return Response(payload)
