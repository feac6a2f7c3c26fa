"""The live feed's filter form (its words and choices) and its adapter to the REST API's
FilterSet (detection.api.filters.WhaleFilter), which alone decides what matches and holds every
limit (amount range and places, entity length, the range check): the form's fields are the
FilterSet's own, relabelled.

The snapshot is filtered in the database; for a pushed event the fan-out asks whale_matches,
so the browser never applies a filter rule itself.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import QuerySet

from detection.api.filters import URGENCY_BANDS, WhaleFilter, WhaleFilterForm
from detection.models import Flow, WhaleStatus, WhaleTransaction

FEED_STATUSES = [
    (WhaleStatus.PENDING, "Pending"),
    (WhaleStatus.CONFIRMED, "Confirmed"),
    (WhaleStatus.DROPPED, "Dropped"),
]
FILTER_NAMES = ("flow", "entity", "urgency", "min_btc", "max_btc", "status")


def api_field(name: str, label: str, **page_words: str) -> forms.Field:
    """The FilterSet's form field for filter `name`, limits and all, in the page's words (a
    copy: the API keeps its own label)."""
    field = copy.deepcopy(WhaleFilter.base_filters[name].field)
    field.label = label
    for attribute, words in page_words.items():
        setattr(field, attribute, words)
    return field


class FeedFilterForm(WhaleFilterForm):
    """The page's words and choices (its status list is the feed's three); the limits are the
    FilterSet's fields (api_field) and the range check its form's (WhaleFilterForm)."""

    flow = forms.ChoiceField(
        choices=[("", "Any flow"), *Flow.choices], required=False, label="Flow"
    )
    entity = api_field("entity", "Entity", help_text="Sender or receiver, e.g. Binance")
    urgency = forms.ChoiceField(
        choices=[("", "Any urgency"), *URGENCY_BANDS],
        required=False,
        label="Urgency",
    )
    min_btc = api_field("min_btc", "Min BTC")
    max_btc = api_field("max_btc", "Max BTC")
    status = forms.ChoiceField(
        choices=[("", "Any status"), *FEED_STATUSES], required=False, label="Status"
    )

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


def apply_filters(whales: QuerySet[WhaleTransaction], active: dict[str, Any]) -> QuerySet:
    """The feed's filters applied by the REST API's FilterSet, the rule's one home."""
    return WhaleFilter(active, queryset=whales).qs


def whale_matches(active: dict[str, Any], whale_pk: int) -> bool:
    """Whether a feed with these filters shows this whale: its live member (nothing replaced it)
    passes them. The fan-out asks this for a pushed event on a filtered socket."""
    live = WhaleTransaction.objects.filter(pk=whale_pk, replaced_by__isnull=True)
    return apply_filters(live, active).exists()


def filters_from_query(query: dict[str, str]) -> dict[str, Any]:
    """Valid filters from a query string's values (the socket's URL); bad ones are dropped."""
    return FeedFilterForm({k: v for k, v in query.items() if k in FILTER_NAMES}).active_filters()
