"""The viewer's own part of a whale page (issue 21): their watch hits on it and their private
names for its addresses. Read through the user's reverse relations, so only theirs."""

from __future__ import annotations

from typing import Any

from detection.models import WhaleTransaction


def watch_panel(user, whale: WhaleTransaction) -> dict[str, Any]:
    addresses = {row.get("address") for row in (whale.inputs or []) + (whale.outputs or [])} - {
        None
    }
    labels = dict(user.private_labels.filter(address__in=addresses).values_list("address", "name"))
    hits = list(
        user.watchlist_entries.filter(hits__event__whale=whale)
        .values_list("value", "note", "hits__direction", "hits__event__kind")
        .order_by("hits__created_at")
    )
    return {"my_labels": sorted(labels.items()), "my_hits": hits}
