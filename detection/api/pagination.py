"""Keyset (cursor) pagination of the whale list, newest first on (first_seen_at, id).

DRF's CursorPagination keys on the first ordering field only and breaks ties with an OFFSET, which
grows with every page of equal timestamps. Here the cursor holds both columns of the stable order
and the next page is a row comparison `(first_seen_at, id) < (t, id)` that the
`whale_newest_first` index answers directly, however deep the page. Rows inserted between two
fetches are newer than any cursor already handed out, so a client paging back in time sees no
duplicates and no gaps.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from django.db.models import Q
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

NEWEST_FIRST = ("-first_seen_at", "-id")
OLDEST_FIRST = ("first_seen_at", "id")
FORWARD, BACKWARD = "n", "p"


def encode_cursor(seen_at: datetime, pk: int, direction: str) -> str:
    raw = json.dumps({"t": seen_at.isoformat(), "i": pk, "d": direction}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        seen_at = datetime.fromisoformat(data["t"])
        pk, direction = int(data["i"]), data["d"]
        if seen_at.tzinfo is None or direction not in (FORWARD, BACKWARD):
            raise ValueError("not a cursor of ours")
        # UTC, because PostgreSQL refuses some offsets Python accepts
        seen_at = seen_at.astimezone(UTC)
    except (binascii.Error, ValueError, TypeError, KeyError, AttributeError, OverflowError):
        raise ValidationError({"cursor": ["Invalid cursor."]}) from None
    if not -(2**63) <= pk < 2**63:
        raise ValidationError({"cursor": ["Invalid cursor."]})
    return seen_at, pk, direction


# (first_seen_at, id) before / after a position. Written so that PostgreSQL scans the
# (first_seen_at, id) index from the position on and drops only the rows tied on first_seen_at.
def _before(seen_at: datetime, pk: int) -> Q:
    return Q(first_seen_at__lte=seen_at) & ~Q(first_seen_at=seen_at, id__gte=pk)


def _after(seen_at: datetime, pk: int) -> Q:
    return Q(first_seen_at__gte=seen_at) & ~Q(first_seen_at=seen_at, id__lte=pk)


class NewestFirstCursorPagination(BasePagination):
    cursor_query_param = "cursor"
    page_size_query_param = "page_size"
    page_size = 50
    max_page_size = 500

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise ValidationError(
                {
                    self.page_size_query_param: [
                        f"Must be an integer from 1 to {self.max_page_size}."
                    ]
                }
            )
        return size

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        size = self.get_page_size(request)
        raw_cursor = request.query_params.get(self.cursor_query_param)
        position = decode_cursor(raw_cursor) if raw_cursor else None
        if position is None or position[2] == FORWARD:
            if position is not None:
                queryset = queryset.filter(_before(*position[:2]))
            rows = list(queryset.order_by(*NEWEST_FIRST)[: size + 1])
            more_after, more_before = len(rows) > size, position is not None
            rows = rows[:size]
        else:
            queryset = queryset.filter(_after(*position[:2]))
            rows = list(queryset.order_by(*OLDEST_FIRST)[: size + 1])
            more_before, more_after = len(rows) > size, True
            rows = rows[:size][::-1]

        self.next_cursor = (
            encode_cursor(rows[-1].first_seen_at, rows[-1].pk, FORWARD)
            if rows and more_after
            else None
        )
        self.previous_cursor = (
            encode_cursor(rows[0].first_seen_at, rows[0].pk, BACKWARD)
            if rows and more_before
            else None
        )
        return rows

    def _link(self, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.cursor_query_param, cursor)

    def get_next_link(self) -> str | None:
        return self._link(self.next_cursor)

    def get_previous_link(self) -> str | None:
        return self._link(self.previous_cursor)

    def get_paginated_response(self, data):
        return Response(
            {"next": self.get_next_link(), "previous": self.get_previous_link(), "results": data}
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {
                "next": {"type": "string", "format": "uri", "nullable": True},
                "previous": {"type": "string", "format": "uri", "nullable": True},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "opaque position from a previous page's next or previous link",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"rows per page, default {self.page_size}",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]
