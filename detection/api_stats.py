"""Figures behind GET /api/v1/stats/: volumes and flows per bucket, accuracy, coverage, source.

Volumes count each RBF chain once: a replaced transaction is left out, its replacement carries
the money. Accuracy is aggregated in PostgreSQL with the rules of detection.domain.accuracy
(tests/api/test_stats.py holds the two equal), because the domain's Python pass over 90 days of
predictions is far too slow for a request; it is the same for every user, so beat computes it every
minute into the cache (detection.refresh_api_accuracy) and requests read it from there.
Volume buckets that ended over two hours ago are cached too (see `_rows_by_bucket`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import Count, F, Q, Sum, Value
from django.db.models.functions import Abs, Coalesce, NullIf, Trunc
from django.utils import timezone

from detection import stats
from detection.domain import accuracy
from detection.models import (
    Flow,
    Prediction,
    PredictionOutcome,
    WhaleStatus,
    WhaleTransaction,
)
from detection.push import btc
from whaleproject.health import check_ingest

BUCKET_SIZES = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
DEFAULT_BUCKET = "day"
DEFAULT_DAYS = 7
MAX_DAYS = 90
ACCURACY_CACHE_KEY = "api:stats:accuracy"
# Beat refreshes the accuracy figures every ACCURACY_REFRESH_SECONDS; the cache outlives a
# missed beat or two, so requests rarely pay for the 90-day aggregate themselves.
ACCURACY_REFRESH_SECONDS = 60
ACCURACY_CACHE_SECONDS = 5 * 60
SETTLED_AFTER = timedelta(hours=2)
SETTLED_CACHE_SECONDS = 15 * 60
BANDS = ("high", "medium", "low", accuracy.UNSCORED_BAND)
# What a non-staff caller may see of the ingest heartbeat (the source may be a private node URL).
PUBLIC_SOURCE_FIELDS = ("state", "age_seconds", "connected", "memory_level")


def _truncate(moment: datetime, bucket: str) -> datetime:
    moment = moment.astimezone(UTC)
    if bucket == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)


def bucket_starts(now: datetime, bucket: str, days: int) -> list[datetime]:
    """The last `days` days as buckets, oldest first; the newest is the current, partial one."""
    step = BUCKET_SIZES[bucket]
    count = days * int(timedelta(days=1) / step)
    newest = _truncate(now, bucket)
    return [newest - step * i for i in range(count - 1, -1, -1)]


def _amounts(count: int, value: int, transfer: int) -> dict[str, Any]:
    return {
        "count": count,
        "value_btc": btc(value),
        "value_sat": value,
        "transfer_btc": btc(transfer),
        "transfer_sat": transfer,
    }


def _empty_flows() -> dict[str, dict[str, Any]]:
    return {flow: {"count": 0, "transfer_sat": 0} for flow in Flow.values}


def _finish(start: datetime, count: int, value: int, transfer: int, flows: dict) -> dict:
    return {
        "start": start,
        **_amounts(count, value, transfer),
        "flows": {
            name: {
                "count": f["count"],
                "transfer_btc": btc(f["transfer_sat"]),
                "transfer_sat": f["transfer_sat"],
            }
            for name, f in flows.items()
        },
    }


def _query_buckets(bucket: str, start: datetime, end: datetime) -> dict[datetime, list[tuple]]:
    """{bucket start: [(flow, count, value, transfer), …]} for [start, end), one index-only scan
    (whale_stats_window)."""
    rows = (
        WhaleTransaction.objects.filter(first_seen_at__gte=start, first_seen_at__lt=end)
        .exclude(status=WhaleStatus.REPLACED)
        .annotate(bucket_start=Trunc("first_seen_at", bucket, tzinfo=UTC))
        .values("bucket_start", "flow")
        # COUNT(*): the id is not in the index
        .annotate(count=Count("*"), value=Sum("value"), transfer=Sum("transfer"))
        .order_by()
    )
    grouped: dict[datetime, list[tuple]] = {}
    for row in rows:
        grouped.setdefault(row["bucket_start"], []).append(
            (row["flow"], row["count"], row["value"], row["transfer"])
        )
    return grouped


def _settled_key(bucket: str, start: datetime) -> str:
    return f"api:stats:volume:{bucket}:{int(start.timestamp())}"


def _rows_by_bucket(now: datetime, bucket: str, starts: list[datetime]) -> dict[datetime, list]:
    """Bucket rows, settled buckets from the cache where it has them.

    Whales of a bucket that ended SETTLED_AFTER ago rarely change (a late replacement, the
    retention purge), so such buckets are cached for SETTLED_CACHE_SECONDS and shared by every
    window and user; only the missing and the recent ones are read, in one query.
    """
    step = BUCKET_SIZES[bucket]
    settled = [start for start in starts if start + step <= now - SETTLED_AFTER]
    keys = {start: _settled_key(bucket, start) for start in settled}
    cached = cache.get_many(list(keys.values())) if keys else {}
    rows = {start: cached[key] for start, key in keys.items() if key in cached}
    missing = [start for start in settled if start not in rows]
    to_read = missing + starts[len(settled) :]  # both in order, missing ones first
    if to_read:
        fresh = _query_buckets(bucket, to_read[0], starts[-1] + step)
        for start in to_read:
            rows[start] = fresh.get(start, [])
        cache.set_many({keys[start]: rows[start] for start in missing}, SETTLED_CACHE_SECONDS)
    return rows


def volumes(now: datetime, bucket: str, days: int) -> tuple[dict, list[dict]]:
    """(totals, buckets): whale count, value and transfer per bucket, split by flow."""
    starts = bucket_starts(now, bucket, days)
    rows = _rows_by_bucket(now, bucket, starts)
    total = [0, 0, 0, _empty_flows()]
    buckets = []
    for start in starts:
        sums = [0, 0, 0, _empty_flows()]
        for flow, count, value, transfer in rows[start]:
            for target in (sums, total):
                target[0] += count
                target[1] += value
                target[2] += transfer
                per_flow = target[3].setdefault(flow, {"count": 0, "transfer_sat": 0})
                per_flow["count"] += count
                per_flow["transfer_sat"] += transfer
        buckets.append(_finish(start, *sums))
    return _finish(starts[0], *total), buckets


def _band_counts(row: dict | None, window: str) -> dict[str, int]:
    if row is None:
        return {"resolved": 0, "hits": 0, "error_sum": 0, "replaced": 0, "dropped": 0}
    return {
        "resolved": row[f"{window}_resolved"],
        "hits": row[f"{window}_hits"],
        "error_sum": row[f"{window}_error"] or 0,
        "replaced": row[f"{window}_replaced"],
        "dropped": row[f"{window}_dropped"],
    }


def _band_figures(parts: list[dict[str, int]]) -> dict[str, Any]:
    resolved = sum(p["resolved"] for p in parts)
    hits = sum(p["hits"] for p in parts)
    error_sum = sum(p["error_sum"] for p in parts)
    return {
        "resolved": resolved,
        "hits": hits,
        "hit_rate": hits / resolved if resolved else None,
        "mean_abs_error": error_sum / resolved if resolved else None,
        "replaced": sum(p["replaced"] for p in parts),
        "dropped": sum(p["dropped"] for p in parts),
    }


def accuracy_windows(now: datetime) -> dict[str, dict[str, Any]]:
    """detection.domain.accuracy.rolling_windows, as one aggregate query grouped by band."""
    confirmed = Q(outcome=PredictionOutcome.CONFIRMED)
    aggregates = {}
    for name, seconds in accuracy.WINDOWS:
        inside = Q(resolved_at__gt=now - timedelta(seconds=seconds))
        aggregates |= {
            f"{name}_resolved": Count("id", filter=inside & confirmed),
            f"{name}_hits": Count(
                "id", filter=inside & confirmed & Q(actual_blocks__lte=F("predicted_blocks"))
            ),
            f"{name}_error": Sum(
                Abs(F("actual_blocks") - F("predicted_blocks")), filter=inside & confirmed
            ),
            f"{name}_replaced": Count("id", filter=inside & Q(outcome=PredictionOutcome.REPLACED)),
            f"{name}_dropped": Count("id", filter=inside & Q(outcome=PredictionOutcome.DROPPED)),
        }
    oldest = now - timedelta(seconds=max(seconds for _, seconds in accuracy.WINDOWS))
    rows = (
        Prediction.objects.filter(resolved_at__gt=oldest, resolved_at__lte=now)
        .exclude(outcome=PredictionOutcome.OPEN)
        # a confirmation the prediction had no block count for cannot be scored (domain rule)
        .exclude(confirmed & (Q(predicted_blocks=None) | Q(actual_blocks=None)))
        .annotate(band_key=Coalesce(NullIf("band", Value("")), Value(accuracy.UNSCORED_BAND)))
        .values("band_key")
        .annotate(**aggregates)
        .order_by()
    )
    by_key = {row["band_key"]: row for row in rows}
    result = {}
    for name, seconds in accuracy.WINDOWS:
        result[name] = {
            "seconds": seconds,
            "overall": _band_figures([_band_counts(row, name) for row in by_key.values()]),
            "by_band": {
                band: _band_figures([_band_counts(by_key.get(band), name)]) for band in BANDS
            },
        }
    return result


def refresh_accuracy_cache(now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Compute the accuracy windows and cache them (beat runs this every minute)."""
    figures = accuracy_windows(now or timezone.now())
    cache.set(ACCURACY_CACHE_KEY, figures, ACCURACY_CACHE_SECONDS)
    return figures


def cached_accuracy_windows(now: datetime) -> dict[str, dict[str, Any]]:
    """The beat-refreshed figures; computed in the request only when beat has not run lately."""
    figures = cache.get(ACCURACY_CACHE_KEY)
    return figures if figures is not None else refresh_accuracy_cache(now)


def source_health(show_source: bool) -> dict[str, Any]:
    check = check_ingest()
    detail = dict(check.detail)
    if "error" in detail:  # Redis unreachable: say so without the exception's name
        detail = {"state": "unknown"}
    if not show_source:
        detail = {k: v for k, v in detail.items() if k in PUBLIC_SOURCE_FIELDS}
    return {"ok": check.ok, **detail}


def stats_payload(
    *, bucket: str, days: int, show_source: bool, now: datetime | None = None
) -> dict[str, Any]:
    now = now or timezone.now()
    totals, buckets = volumes(now, bucket, days)
    return {
        "bucket": bucket,
        "days": days,
        "since": buckets[0]["start"],
        "until": now,
        "totals": totals,
        "volumes": buckets,
        "accuracy": cached_accuracy_windows(now),
        "coverage": stats.coverage(since=now - timedelta(days=days)),
        "source": source_health(show_source),
    }
