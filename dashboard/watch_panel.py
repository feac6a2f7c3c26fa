"""The viewer's own part of a whale page (issue 21): their watch hits on it and their private
names for its addresses. Read through the user's reverse relations, so only theirs."""

from __future__ import annotations

from typing import Any

from detection.models import WhaleTransaction


def all_private_labels(user) -> dict[str, str]:
    """Every name the user gave an address ({address: name}); empty for anyone else."""
    if user is None or not user.is_authenticated:
        return {}
    return dict(user.private_labels.values_list("address", "name"))


def watch_panel(user, whale: WhaleTransaction) -> dict[str, Any]:
    labels = dict(
        user.private_labels.filter(address__in=whale.addresses()).values_list("address", "name")
    )
    hits = list(
        user.watchlist_entries.filter(hits__event__whale=whale)
        .values_list("value", "note", "hits__direction", "hits__event__kind")
        .order_by("hits__created_at")
    )
    return {"my_labels": sorted(labels.items()), "my_hits": hits}
