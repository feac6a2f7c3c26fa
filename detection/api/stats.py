"""Figures behind GET /api/v1/stats/: volumes and flows per bucket, accuracy, coverage, source.

Volumes count each RBF chain once: a replaced transaction is left out, its replacement carries
the money. Volumes and accuracy are read from per-hour rollups (detection.models
WhaleHourlyVolume and PredictionHourlyOutcome, kept by detection.recording in the whales'
transactions), so a request costs a few thousand small rows however many whales there are, also
when nothing is cached. Accuracy follows the rules of detection.domain.accuracy exactly
(tests/api/test_stats.py holds the two equal); it is the same for every user, so beat still
refreshes it every minute into the cache and requests read it from there.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    F,
    IntegerField,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Trunc
from django.utils import timezone

from detection import stats
from detection.domain import accuracy
from detection.models import Flow, Prediction, PredictionHourlyOutcome, WhaleHourlyVolume
from detection.summary import btc
from whaleproject.health import check_ingest

BUCKET_SIZES = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
DEFAULT_BUCKET = "day"
DEFAULT_DAYS = 7
MAX_DAYS = 90
ACCURACY_CACHE_KEY = "api:stats:accuracy"
# Beat refreshes the accuracy figures every ACCURACY_REFRESH_SECONDS; the cache outlives a
# missed beat or two. Computing them in a request is cheap too (the rollup), just not shared.
ACCURACY_REFRESH_SECONDS = 60
ACCURACY_CACHE_SECONDS = 5 * 60
BANDS = ("high", "medium", "low", accuracy.UNSCORED_BAND)
FLOWS = tuple(Flow.values)
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


def _bucket(start: datetime, count: int, value: int, transfer: int, flows) -> dict[str, Any]:
    """One volume bucket; `flows` holds (count, transfer) per flow, in FLOWS order."""
    return {
        "start": start,
        "count": count,
        "value_btc": btc(value),
        "value_sat": value,
        "transfer_btc": btc(transfer),
        "transfer_sat": transfer,
        "flows": {
            name: {"count": n, "transfer_btc": btc(t), "transfer_sat": t}
            for name, (n, t) in zip(FLOWS, flows, strict=True)
        },
    }


def _total(column: str, only: Q | None = None):
    # bigint, not PostgreSQL's numeric SUM: no Decimal to load and convert per cell
    return Coalesce(Cast(Sum(column, filter=only), BigIntegerField()), 0)


def _rows_by_bucket(bucket: str, starts: list[datetime]) -> dict[datetime, tuple]:
    """{bucket start: (count, value, transfer, n0, t0, n1, t1, …)}, per flow in FLOWS order,
    summed from the hourly rollup: one row per bucket, the flows pivoted in SQL.

    Buckets are UTC hours or days, so a day is the sum of its 24 rollup hours; the API has no
    time zone parameter (a zone with a whole-hour offset could be served the same way).
    """
    end = starts[-1] + BUCKET_SIZES[bucket]
    start_of = F("hour") if bucket == "hour" else Trunc("hour", bucket, tzinfo=UTC)
    aggregates = {
        "n": _total("count"),
        "value_sum": _total("value"),
        "transfer_sum": _total("transfer"),
    }
    for i, flow in enumerate(FLOWS):
        aggregates[f"n{i}"] = _total("count", Q(flow=flow))
        aggregates[f"t{i}"] = _total("transfer", Q(flow=flow))
    rows = (
        WhaleHourlyVolume.objects.filter(hour__gte=starts[0], hour__lt=end)
        .annotate(bucket_start=start_of)
        .values("bucket_start")
        .annotate(**aggregates)
        .order_by()
        .values_list("bucket_start", *aggregates)
    )
    return {row[0]: row[1:] for row in rows}


def _per_flow(row) -> list[tuple[int, int]]:
    return list(zip(row[3::2], row[4::2], strict=True))


def volumes(now: datetime, bucket: str, days: int) -> tuple[dict, list[dict]]:
    """(totals, buckets): whale count, value and transfer per bucket, split by flow."""
    starts = bucket_starts(now, bucket, days)
    rows = _rows_by_bucket(bucket, starts)
    empty = (0,) * (3 + 2 * len(FLOWS))
    totals = [0] * len(empty)
    buckets = []
    for start in starts:
        row = rows.get(start, empty)
        for i, amount in enumerate(row):
            totals[i] += amount
        buckets.append(_bucket(start, *row[:3], _per_flow(row)))
    total = _bucket(starts[0], *totals[:3], _per_flow(totals))
    return total, buckets


def _band_figures(parts: list[dict[str, int]]) -> dict[str, Any]:
    resolved = sum(p["resolved"] for p in parts)
    hits = sum(p["hits"] for p in parts)
    error_sum = sum(p["error_sum"] for p in parts)
    replaced = sum(p["replaced"] for p in parts)
    dropped = sum(p["dropped"] for p in parts)
    return {
        "resolved": resolved,
        "hits": hits,
        "hit_rate": hits / resolved if resolved else None,
        "mean_abs_error": error_sum / resolved if resolved else None,
        "coverage": accuracy.coverage_of(resolved, replaced, dropped),
        "replaced": replaced,
        "dropped": dropped,
    }


def _window_parts(now: datetime) -> dict[str, tuple[datetime, datetime, datetime]]:
    """{window: (after, first whole hour, end of whole hours)}.

    A window holds predictions resolved in (now - length, now]. Its whole UTC hours come from the
    rollup, [first whole hour, end of whole hours); the partial hours at either edge, (after,
    first whole hour) and [end of whole hours, now], from the prediction rows. A window too
    short for a whole hour has first == end and is read from the rows alone.
    """
    current_hour = stats.hour_of(now)
    lengths = sorted(seconds for _name, seconds in accuracy.WINDOWS)
    # accuracy_windows gives each window's far partial hour its own piece: they must not meet
    assert all(b - a >= 3600 for a, b in zip(lengths, lengths[1:], strict=False))
    parts = {}
    for name, seconds in accuracy.WINDOWS:
        after = now - timedelta(seconds=seconds)
        first = min(stats.hour_of(after) + timedelta(hours=1), current_hour)
        parts[name] = (after, first, current_hour)
    return parts


def accuracy_windows(now: datetime) -> dict[str, dict[str, Any]]:
    """detection.domain.accuracy.rolling_windows from the hourly rollup plus the edge rows.

    Exact, not an approximation: every figure is a count or a sum over the window (the rates are
    ratios of those), and sums over disjoint pieces add up. Two queries, each grouped by band and
    by a disjoint piece of time (a CASE), because the windows share their pieces: whole hours
    nest (every window's end of whole hours is the current hour), the current partial hour is in
    every window, and each window has its own partial hour at its far edge.
    """
    parts = _window_parts(now)
    end = next(iter(parts.values()))[2]
    zero = dict.fromkeys(PredictionHourlyOutcome.SUMS, 0)
    sums = {name: {band: dict(zero) for band in BANDS} for name in parts}

    def add(names, band: str, figures: dict[str, int]) -> None:
        for name in names:
            target = sums[name].setdefault(band, dict(zero))
            for field in PredictionHourlyOutcome.SUMS:
                target[field] += figures[field] or 0

    # Whole hours: piece k is [first of window k, first of the next shorter window); a window
    # holds its own piece and those of every shorter one.
    whole = sorted(
        ((first, name) for name, (_after, first, _end) in parts.items() if first < end),
        reverse=True,
    )
    if whole:
        piece = Case(
            *(When(hour__gte=first, then=Value(k)) for k, (first, _name) in enumerate(whole)),
            output_field=IntegerField(),
        )
        rows = (
            PredictionHourlyOutcome.objects.filter(hour__gte=whole[-1][0], hour__lt=end)
            .annotate(piece=piece)
            .values("band", "piece")
            .annotate(**{field: Sum(field) for field in PredictionHourlyOutcome.SUMS})
            .order_by()
        )
        for row in rows:
            add([name for _first, name in whole[row["piece"] :]], row["band"], row)

    # Partial hours: the current one ([end, now], in every window) and each window's far edge.
    edges = {"now": Q(resolved_at__gte=end, resolved_at__lte=now)}
    for name, (after, first, _end) in parts.items():
        edges[name] = Q(resolved_at__gt=after, resolved_at__lt=first if first < end else end)
    edge = Case(
        *(When(condition, then=Value(key)) for key, condition in edges.items()),
        output_field=CharField(),
    )
    anywhere = Q()
    for condition in edges.values():
        anywhere |= condition
    rows = (
        stats.scorable(Prediction.objects.filter(anywhere))
        .annotate(edge=edge)
        .values("band_key", "edge")
        .annotate(**stats.outcome_aggregates())
        .order_by()
    )
    for row in rows:
        add(list(parts) if row["edge"] == "now" else [row["edge"]], row["band_key"], row)

    return {
        name: {
            "seconds": seconds,
            "overall": _band_figures(list(sums[name].values())),
            "by_band": {band: _band_figures([sums[name][band]]) for band in BANDS},
        }
        for name, seconds in accuracy.WINDOWS
    }


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
        "coverage": stats.rolled_up_coverage(since=now - timedelta(days=days)),
        "source": source_health(show_source),
    }
