"""What the dashboard socket says: the snapshot from the database, and the ingest status push.

The channel layer is at-most-once, so a client is never told "only what changed": every
(re)connect starts from a snapshot of the database, and pushed events are applied on top of it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from django.db.models import F, Max, OuterRef, Subquery
from django.db.models.functions import Coalesce

from dashboard.feed_filters import apply_filters
from dashboard.rows import DEFAULT_CURRENCY, own_labels, row_html
from dashboard.source_health import banner_payload
from detection.models import WhaleEvent, WhaleStatus, WhaleTransaction
from detection.push import WHALE_FEED_GROUP, agroup_send, group_send
from detection.summary import whale_summary
from whaleproject.health import read_ingest_heartbeat

log = logging.getLogger(__name__)

# A fee spike can leave hundreds of whales pending; the page shows the newest, the API has all.
PENDING_LIMIT = 100
RECENT_LIMIT = 50


def _current_whales():
    """One row per RBF chain: the member that is still live (nothing replaced it)."""
    last_sequence = (
        WhaleEvent.objects.filter(chain_id=OuterRef("chain_key"))
        .values("chain_id")
        .annotate(last=Max("sequence"))
        .values("last")
    )
    return (
        WhaleTransaction.objects.filter(replaced_by__isnull=True)
        .select_related("chain")
        .annotate(chain_key=Coalesce("chain_id", "pk"))
        .annotate(last_sequence=Subquery(last_sequence))
    )


def _entry(whale: WhaleTransaction, labels: dict[str, str] | None = None) -> dict[str, Any]:
    entry = whale_summary(whale)
    mine = own_labels(labels, whale.addresses()) if labels else {}
    if mine:
        entry["my_labels"] = sorted(mine.items())
    # The browser drops a pushed event older than what it already shows (two Celery workers may
    # record a chain's events out of order); the per-chain sequence says which is newer.
    entry["sequence"] = whale.last_sequence or 0
    return entry


def feed_whales(
    filters: dict[str, Any], labels: dict[str, str] | None = None
) -> tuple[list[dict], list[dict]]:
    """(pending, recent) whale summaries, newest first, filtered like the page's URL says;
    with a viewer's private `labels`, each carries its `my_labels` for that viewer's rows."""
    whales = apply_filters(_current_whales(), filters)
    pending = whales.filter(status=WhaleStatus.PENDING).order_by("-first_seen_at", "-id")
    recent = whales.exclude(status=WhaleStatus.PENDING).order_by(
        F("status_at").desc(nulls_last=True), "-first_seen_at", "-id"
    )
    return (
        [_entry(whale, labels) for whale in pending[:PENDING_LIMIT]],
        [_entry(whale, labels) for whale in recent[:RECENT_LIMIT]],
    )


def snapshot_message(
    filters: dict[str, Any],
    *,
    with_whales: bool = True,
    currency: str = DEFAULT_CURRENCY,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The socket's snapshot; each whale carries `row_html`, the page's row in `currency` with
    the viewer's private `labels`."""
    pending, recent = feed_whales(filters, labels) if with_whales else ([], [])
    whales = pending + recent
    for whale in whales:
        whale["row_html"] = row_html(whale, currency)
    try:
        ingest = read_ingest_heartbeat()
    except Exception:
        ingest = None  # Redis trouble: the banner says "unavailable", the feed still loads
    now = time.time()
    return {
        "type": "snapshot",
        "whales": whales,
        "ingest": ingest,
        # the banner's state and words, judged by dashboard.source_health (see fanout.encode)
        "banner": banner_payload(ingest, now),
        "server_time": now,
    }


def publish_ingest_status(status: dict[str, Any]) -> None:
    """Push one ingest heartbeat to every dashboard socket (the ingest calls this every 5 s).

    Callable from plain code and from inside a running event loop (the ingest's): there it is
    scheduled as a task instead of blocking the loop. Best effort, like every dashboard push: a
    lost status is replaced five seconds later, and the browser treats a silent source as
    degraded on its own, so a failure is logged and never raised into the ingest.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is None:
        try:
            group_send(WHALE_FEED_GROUP, _status_message(status))
        except Exception:
            log.warning("ingest status not pushed to the dashboard", exc_info=True)
        return
    task = loop.create_task(apublish_ingest_status(status))
    _pending_pushes.add(task)
    task.add_done_callback(_push_done)


async def apublish_ingest_status(status: dict[str, Any]) -> None:
    """The awaitable form of publish_ingest_status (raises on a channel layer failure)."""
    await agroup_send(WHALE_FEED_GROUP, _status_message(status))


def _status_message(status: dict[str, Any]) -> dict[str, Any]:
    payload = dict(status)
    # The banner judges freshness by written_at, as in the Redis heartbeat (which stamps it).
    payload.setdefault("written_at", payload.get("at") or time.time())
    return {"type": "ingest.status", "status": payload}


_pending_pushes: set[asyncio.Task] = set()  # a task nobody references may be collected mid-run


def _push_done(task: asyncio.Task) -> None:
    _pending_pushes.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("ingest status not pushed to the dashboard: %r", task.exception())
