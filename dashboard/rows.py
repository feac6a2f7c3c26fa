"""The feed's whale row, rendered by the one template the page uses (dashboard/_whale_row.html).

The live push carries this HTML so that the browser inserts rows and never builds them itself.
A row differs between users in its fiat amount (the viewer's display currency) and in the
viewer's private labels of its addresses (issue 21). The push therefore renders one row in the
portal default (USD) and one per other currency the whale has a price in, once per event, and
the page picks the one for its own currency. Private labels are not in the pushed rows: each
process's fan-out fills the rows' empty labels slot for the sockets whose user named one of the
whale's addresses (`with_labels`), from labels each socket holds; everyone else gets the shared
frame.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.template.loader import render_to_string

ROW_TEMPLATE = "dashboard/_whale_row.html"
LABELS_TEMPLATE = "dashboard/_my_labels.html"
DEFAULT_CURRENCY = "USD"


def row_html(whale: dict[str, Any], currency: str = DEFAULT_CURRENCY) -> str:
    """One row for a whale summary (detection.summary.whale_summary plus its `sequence`, and the
    viewer's `my_labels` as [(address, name)] when rendered for one viewer)."""
    return render_to_string(ROW_TEMPLATE, {"w": whale, "display_currency": currency}).strip()


def row_fields(whale: dict[str, Any]) -> dict[str, Any]:
    """The rendered rows a pushed event carries: `row_html` (USD) and `row_html_by_currency`."""
    moved = ((whale.get("fiat") or {}).get("moved")) or {}
    return {
        "row_html": row_html(whale),
        "row_html_by_currency": {
            code: row_html(whale, code) for code in sorted(moved) if code != DEFAULT_CURRENCY
        },
    }


def labels_html(labels: dict[str, str]) -> str:
    return render_to_string(LABELS_TEMPLATE, {"labels": sorted(labels.items())}).strip()


@cache
def _empty_slot() -> str:
    return labels_html({})


def own_labels(labels: dict[str, str], addresses) -> dict[str, str]:
    """The viewer's labels of these addresses (set lookups; most whales touch none)."""
    return {address: labels[address] for address in addresses if address in labels}


def with_labels(event: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """A pushed event whose rendered rows show `labels` (one viewer's, non-empty)."""
    if "row_html" not in event:
        return event
    filled = labels_html(labels)
    empty = _empty_slot()
    return {
        **event,
        "row_html": event["row_html"].replace(empty, filled, 1),
        "row_html_by_currency": {
            code: row.replace(empty, filled, 1)
            for code, row in (event.get("row_html_by_currency") or {}).items()
        },
    }
