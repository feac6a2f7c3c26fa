"""The live feed's filters: parsed from the URL, applied to the database and handed to the browser.

static/js/feed.js applies the same rules (`matchesFilters`) to live events; keep them in step.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import QuerySet

from detection.domain import urgency
from detection.models import Flow, UrgencyBand, WhaleStatus, WhaleTransaction, entity_is
from detection.txshape import SATS_PER_BTC

UNSCORED = "unscored"
FEED_STATUSES = [
    (WhaleStatus.PENDING, "Pending"),
    (WhaleStatus.CONFIRMED, "Confirmed"),
    (WhaleStatus.DROPPED, "Dropped"),
]
FILTER_NAMES = ("flow", "entity", "urgency", "min_btc", "max_btc", "status")


class FeedFilterForm(forms.Form):
    flow = forms.ChoiceField(
        choices=[("", "Any flow"), *Flow.choices], required=False, label="Flow"
    )
    entity = forms.CharField(
        max_length=100,
        required=False,
        label="Entity",
        help_text="Sender or receiver, e.g. Binance",
    )
    urgency = forms.ChoiceField(
        choices=[
            ("", "Any urgency"),
            (UrgencyBand.HIGH, "High"),
            (UrgencyBand.MEDIUM, "Medium"),
            (UrgencyBand.LOW, "Low"),
            (UNSCORED, "Not scored"),
        ],
        required=False,
        label="Urgency",
    )
    min_btc = forms.DecimalField(
        min_value=0, max_value=21_000_000, decimal_places=8, required=False, label="Min BTC"
    )
    max_btc = forms.DecimalField(
        min_value=0, max_value=21_000_000, decimal_places=8, required=False, label="Max BTC"
    )
    status = forms.ChoiceField(
        choices=[("", "Any status"), *FEED_STATUSES], required=False, label="Status"
    )

    def clean(self):
        cleaned = super().clean()
        low, high = cleaned.get("min_btc"), cleaned.get("max_btc")
        if low is not None and high is not None and low > high:
            self.add_error("max_btc", "Max BTC must not be below min BTC.")
        return cleaned

    def active_filters(self) -> dict[str, Any]:
        """The valid, non-empty filters as JSON-able values; invalid ones are left out."""
        if not hasattr(self, "cleaned_data"):
            self.is_valid()
        active: dict[str, Any] = {}
        for name in FILTER_NAMES:
            value = self.cleaned_data.get(name)
            if value in (None, ""):
                continue
            active[name] = str(value) if isinstance(value, Decimal) else value
        if "entity" in active:
            active["entity"] = active["entity"].strip()
        return active

    def problems(self) -> list[str]:
        """One readable sentence per bad value, naming the filter."""
        sentences = []
        for name, errors in self.errors.items():
            label = self.fields[name].label if name in self.fields else "Filters"
            for error in errors:
                sentences.append(f"{label}: {error}")
        return sentences


def _sats(btc: str | Decimal) -> int:
    return int(Decimal(btc) * SATS_PER_BTC)


def apply_filters(whales: QuerySet[WhaleTransaction], active: dict[str, Any]) -> QuerySet:
    if flow := active.get("flow"):
        whales = whales.filter(flow=flow)
    if entity := active.get("entity"):
        whales = whales.filter(entity_is(entity))
    if (low := active.get("min_btc")) is not None:
        whales = whales.filter(value__gte=_sats(low))
    if (high := active.get("max_btc")) is not None:
        whales = whales.filter(value__lte=_sats(high))
    if status := active.get("status"):
        whales = whales.filter(status=status)
    if band := active.get("urgency"):
        # latest_urgency is the latest prediction's score, kept on the row by detection.recording
        if band == UNSCORED:
            whales = whales.filter(latest_urgency__isnull=True)
        elif band == UrgencyBand.HIGH:
            whales = whales.filter(latest_urgency__gte=urgency.HIGH_THRESHOLD)
        elif band == UrgencyBand.MEDIUM:
            whales = whales.filter(
                latest_urgency__gte=urgency.MEDIUM_THRESHOLD,
                latest_urgency__lt=urgency.HIGH_THRESHOLD,
            )
        else:
            whales = whales.filter(latest_urgency__lt=urgency.MEDIUM_THRESHOLD)
    return whales


def filters_from_query(query: dict[str, str]) -> dict[str, Any]:
    """Valid filters from a query string's values (the socket's URL); bad ones are dropped."""
    return FeedFilterForm({k: v for k, v in query.items() if k in FILTER_NAMES}).active_filters()
