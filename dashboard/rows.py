"""The feed's whale row, rendered by the one template the page uses (dashboard/_whale_row.html).

The live push carries this HTML so that the browser inserts rows and never builds them itself.
A row differs between users only in its fiat amount (the viewer's display currency); it shows
no private labels (watchlists belong to the whale page). The push therefore renders one row in
the portal default (USD) and one per other currency the whale has a price in, once per event,
and the page picks the one for its own currency.
"""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string

ROW_TEMPLATE = "dashboard/_whale_row.html"
DEFAULT_CURRENCY = "USD"


def row_html(whale: dict[str, Any], currency: str = DEFAULT_CURRENCY) -> str:
    """One row for a whale summary (detection.summary.whale_summary plus its `sequence`)."""
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
