"""Query filters of the whale list (and its CSV export), validated strictly.

A value that cannot be understood (flow=banana, min_btc=abc, since=notadate) is a 400 naming the
parameter, never a silently empty or unfiltered list.
"""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField

from detection.domain import urgency
from detection.models import Flow, UrgencyBand, WhaleStatus, WhaleTransaction, entity_is
from detection.txshape import SATS_PER_BTC

MAX_BTC = Decimal(21_000_000)
BTC_PATTERN = r"^\d{1,8}(\.\d{1,8})?$"
USD_PATTERN = r"^\d{1,18}(\.\d{1,2})?$"
# The urgency band of the latest prediction, or no prediction with a score yet.
UNSCORED = "unscored"
URGENCY_BANDS = [*UrgencyBand.choices, (UNSCORED, "Not scored")]


class BtcAmountFilter(django_filters.NumberFilter):
    """A BTC decimal (at most 8 places) compared with a satoshi column."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", Decimal(0))
        kwargs.setdefault("max_value", MAX_BTC)
        kwargs.setdefault("max_digits", 16)
        kwargs.setdefault("decimal_places", 8)
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        if value in django_filters.constants.EMPTY_VALUES:
            return qs
        return super().filter(qs, int(value * SATS_PER_BTC))


class UtcDateTimeField(IsoDateTimeField):
    """ISO 8601 with any offset Python accepts, handed on in UTC.

    PostgreSQL refuses offsets beyond ±15:59 that Python parses (e.g. -23:40), and a moment
    near year 1 may not exist in UTC at all; both are the caller's mistake, so a 400.
    """

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("Date out of range.", code="invalid") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class UrgencyFilter(django_filters.NumberFilter):
    # A float form field: urgency is a float column, and it refuses nan and inf.
    field_class = forms.FloatField


class WhaleFilterForm(forms.Form):
    """Ranges given upside down are mistakes worth reporting, not empty pages."""

    def clean(self):
        cleaned = super().clean()
        low, high = cleaned.get("min_btc"), cleaned.get("max_btc")
        if low is not None and high is not None and low > high:
            self.add_error("max_btc", "max_btc must not be below min_btc.")
        since, until = cleaned.get("since"), cleaned.get("until")
        if since is not None and until is not None and since >= until:
            self.add_error("until", "until must be after since.")
        return cleaned


class WhaleFilter(django_filters.FilterSet):
    min_btc = BtcAmountFilter(
        field_name="value", lookup_expr="gte", label="value (sum of outputs) at least, in BTC"
    )
    max_btc = BtcAmountFilter(
        field_name="value", lookup_expr="lte", label="value (sum of outputs) at most, in BTC"
    )
    min_moved_btc = BtcAmountFilter(
        field_name="moved", lookup_expr="gte", label="moved (value less estimated change) at least"
    )
    min_usd = django_filters.NumberFilter(
        field_name="value_usd",
        lookup_expr="gte",
        min_value=Decimal(0),
        max_value=Decimal(10) ** 18,
        max_digits=20,
        decimal_places=2,
        label="value in USD at detection at least (whales without a price are left out)",
    )
    flow = django_filters.ChoiceFilter(choices=Flow.choices)
    entity = django_filters.CharFilter(
        method="filter_entity",
        max_length=100,
        label="sending or receiving entity, exact name in any case",
    )
    status = django_filters.ChoiceFilter(choices=WhaleStatus.choices)
    urgency = django_filters.ChoiceFilter(
        choices=URGENCY_BANDS,
        method="filter_urgency_band",
        label="latest prediction's urgency band (high, medium, low) or unscored",
    )
    min_urgency = UrgencyFilter(
        field_name="latest_urgency",
        lookup_expr="gte",
        min_value=0.0,
        max_value=1.0,
        label="latest prediction's urgency at least (0..1)",
    )
    since = UtcDateTimeFilter(
        field_name="first_seen_at", lookup_expr="gte", label="first seen at or after"
    )
    until = UtcDateTimeFilter(
        field_name="first_seen_at", lookup_expr="lt", label="first seen before"
    )

    class Meta:
        model = WhaleTransaction
        fields: list[str] = []
        form = WhaleFilterForm

    def filter_entity(self, queryset, name, value):
        return queryset.filter(entity_is(value))

    def filter_urgency_band(self, queryset, name, value):
        # latest_urgency is the latest prediction's score, kept on the row by detection.recording
        if value == UNSCORED:
            return queryset.filter(latest_urgency__isnull=True)
        if value == UrgencyBand.HIGH:
            return queryset.filter(latest_urgency__gte=urgency.HIGH_THRESHOLD)
        if value == UrgencyBand.MEDIUM:
            return queryset.filter(
                latest_urgency__gte=urgency.MEDIUM_THRESHOLD,
                latest_urgency__lt=urgency.HIGH_THRESHOLD,
            )
        return queryset.filter(latest_urgency__lt=urgency.MEDIUM_THRESHOLD)
