"""Celery tasks of the detection app. Thin: the work is in detection.recording."""

import logging

from celery import shared_task
from django.conf import settings
from django.core.management import call_command
from django.db import InterfaceError, OperationalError

from detection.api.stats import refresh_accuracy_cache
from detection.recording import BadPayload, record_event
from detection.retention import purge_history
from detection.stats import check_accuracy_alarm, rebuild_recent_rollups

log = logging.getLogger(__name__)


@shared_task(
    name="detection.record_whale_event",
    ignore_result=True,
    # PostgreSQL down or restarting: keep retrying (the event is not recorded yet, and the
    # unique constraints make a retry after a half-seen commit harmless). Backoff caps at 5 min,
    # well under the broker's visibility timeout.
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=300,
    max_retries=100,
)
def record_whale_event(payload: dict) -> None:
    """Record one lifecycle event from the ingest process (idempotent under redelivery)."""
    try:
        result = record_event(payload)
    except BadPayload as exc:
        # Retrying cannot fix a malformed payload; keep it in the log for the operator.
        log.error("rejected whale event %s: %s", payload.get("event_id"), exc)
        return
    if not result.created:
        log.info("whale event %s not recorded: %s", payload.get("event_id"), result.reason)


@shared_task(name="detection.check_accuracy", ignore_result=True)
def check_accuracy() -> None:
    decision = check_accuracy_alarm()
    log.info("accuracy check: %s", decision.reason)


@shared_task(name="detection.purge_history", ignore_result=True)
def purge_old_history() -> None:
    result = purge_history(settings.WHALE_RETENTION_DAYS)
    log.info("purged %s whale(s) and %s block(s)", result.whales, result.blocks)


@shared_task(name="detection.flush_expired_tokens", ignore_result=True)
def flush_expired_tokens() -> None:
    """Daily (beat): drop expired JWT refresh tokens from the outstanding and blacklist tables."""
    call_command("flushexpiredtokens", verbosity=0)


@shared_task(name="detection.refresh_api_accuracy", ignore_result=True)
def refresh_api_accuracy() -> None:
    """Every minute (beat): the API's accuracy windows into the cache, off the request path."""
    refresh_accuracy_cache()


# Rollups are kept by recording; an edit in the admin or in SQL goes around it. Beat rebuilds
# this many recent hours so such an edit heals by itself (older hours: rebuild_stats_rollups).
RECENT_ROLLUP_HOURS = 3


@shared_task(name="detection.rebuild_recent_rollups", ignore_result=True)
def rebuild_recent_stats_rollups() -> None:
    volumes, outcomes = rebuild_recent_rollups(RECENT_ROLLUP_HOURS)
    log.info(
        "rebuilt the last %s h of rollups: %s volume, %s outcome row(s)",
        RECENT_ROLLUP_HOURS,
        volumes,
        outcomes,
    )
