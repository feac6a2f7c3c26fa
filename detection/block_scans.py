"""Where the ingest's block scans stand, in the database (issue 13).

The last fully scanned block is the highest ``Block`` with ``scanned_at`` set and not orphaned: a
restarted ingest scans every block after it (bounded by ``WHALE_CATCH_UP_MAX_BLOCKS``). Called
from the ingest's worker threads; each call closes its connection, since the ingest holds none
while it runs.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import connection

from detection.ingest.protocol import BlockInfo
from detection.models import Block


def last_scanned_block() -> tuple[int, str] | None:
    try:
        row = (
            Block.objects.filter(scanned_at__isnull=False, orphaned=False)
            .order_by("-height")
            .values_list("height", "hash")
            .first()
        )
    finally:
        connection.close()
    return (row[0], row[1]) if row else None


def save_scanned_block(block: BlockInfo) -> None:
    now = datetime.now(tz=UTC)
    when = datetime.fromtimestamp(block.time, tz=UTC) if block.time is not None else None
    try:
        Block.objects.update_or_create(
            hash=block.hash,
            defaults={"height": block.height, "scanned_at": now},
            create_defaults={"height": block.height, "time": when, "scanned_at": now},
        )
    finally:
        connection.close()
