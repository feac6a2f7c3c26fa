"""Whale list as CSV, streamed: constant memory however many rows match.

Rows come from a server-side cursor (`iterator(chunk_size)`) as plain tuples (no model instances)
and leave in batches, so a million-row export holds one batch at a time.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from django.http import StreamingHttpResponse
from django.utils import timezone
from rest_framework.renderers import BaseRenderer

from detection.summary import btc

CHUNK_ROWS = 2000
# Cells a spreadsheet would run as a formula. Entities come from imported label files, so an
# export opened in a spreadsheet must not execute them (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

# (header, values_list field); the BTC columns are derived from the satoshi column beside them.
COLUMNS = (
    ("txid", "txid"),
    ("chain_txid", "chain_txid"),
    ("status", "status"),
    ("first_seen_at", "first_seen_at"),
    ("value_btc", None),
    ("value_sat", "value"),
    ("transfer_btc", None),
    ("transfer_sat", "transfer"),
    ("fee_btc", None),
    ("fee_sat", "fee"),
    ("fee_rate", "fee_rate"),
    ("effective_fee_rate", "effective_fee_rate"),
    ("vsize", "vsize"),
    ("flow", "flow"),
    ("from_entity", "from_entity"),
    ("to_entity", "to_entity"),
    ("latest_urgency", "latest_urgency"),
    ("replaced_by", "replaced_by_txid"),
    ("confirmed_height", "confirmed_height"),
    ("confirmed_at", "confirmed_at"),
    ("blocks_waited", "blocks_waited"),
)
HEADER = [name for name, _ in COLUMNS]
FIELDS = [field for _, field in COLUMNS if field]


def _safe_text(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def _time(value) -> str:
    return value.isoformat().replace("+00:00", "Z") if value else ""


def _row(record: dict) -> list:
    fee_rate = record["fee_rate"]
    return [
        record["txid"],
        record["chain_txid"],
        record["status"],
        _time(record["first_seen_at"]),
        btc(record["value"]),
        record["value"],
        btc(record["transfer"]),
        record["transfer"],
        btc(record["fee"]) if record["fee"] is not None else "",
        "" if record["fee"] is None else record["fee"],
        "" if fee_rate is None else fee_rate,
        "" if record["effective_fee_rate"] is None else record["effective_fee_rate"],
        record["vsize"],
        record["flow"],
        _safe_text(record["from_entity"]),
        _safe_text(record["to_entity"]),
        "" if record["latest_urgency"] is None else record["latest_urgency"],
        record["replaced_by_txid"] or "",
        "" if record["confirmed_height"] is None else record["confirmed_height"],
        _time(record["confirmed_at"]),
        "" if record["blocks_waited"] is None else record["blocks_waited"],
    ]


def csv_lines(queryset) -> Iterator[str]:
    """The header, then the rows in batches of CHUNK_ROWS, as text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    pending = 0
    for values in queryset.values_list(*FIELDS).iterator(chunk_size=CHUNK_ROWS):
        writer.writerow(_row(dict(zip(FIELDS, values, strict=True))))
        pending += 1
        if pending == CHUNK_ROWS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue()


def whales_csv_response(queryset) -> StreamingHttpResponse:
    response = StreamingHttpResponse(csv_lines(queryset), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="whales-{stamp}.csv"'
    # A proxy buffering the body would defeat the streaming (and hold the rows in its memory).
    response["X-Accel-Buffering"] = "no"
    return response


class CsvRenderer(BaseRenderer):
    """Lets ?format=csv (or Accept: text/csv) through DRF's content negotiation.

    The list view answers CSV requests with a StreamingHttpResponse itself; this renderer only
    runs for an error response, which the view switches back to JSON first.
    """

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return b"" if data is None else str(data).encode()
