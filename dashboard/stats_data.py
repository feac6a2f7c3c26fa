"""Figures behind the stats page's charts, shaped for Chart.js (labels + one list per series).

Every series is aggregated in PostgreSQL; Python only fills the empty buckets so that the time
axis has no holes, and bins the urgency scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from django.db.models import Count, Q, Sum
from django.db.models.functions import Trunc
from django.utils import timezone

from detection import figures, stats
from detection.domain import accuracy, urgency
from detection.models import Flow, Prediction, PredictionOutcome, WhaleTransaction
from detection.txshape import SATS_PER_BTC


@dataclass(frozen=True)
class StatsRange:
    key: str
    label: str
    span: timedelta
    accuracy_bucket: str  # Trunc kind for the accuracy series: hourly over a day, daily over a week


RANGES = {
    "24h": StatsRange("24h", "Last 24 hours", timedelta(hours=24), "hour"),
    "7d": StatsRange("7d", "Last 7 days", timedelta(days=7), "day"),
}
DEFAULT_RANGE = "24h"
BANDS = ("high", "medium", "low")
URGENCY_BINS = 10


def _buckets(since: datetime, until: datetime, kind: str, zone: tzinfo) -> list[datetime]:
    step = timedelta(hours=1) if kind == "hour" else timedelta(days=1)
    local = since.astimezone(zone)
    if kind == "hour":
        start = local.replace(minute=0, second=0, microsecond=0)
    else:
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    buckets = []
    moment = start
    while moment <= until:
        buckets.append(moment)
        # step in UTC, then back to local time: a DST change must not skip or repeat an hour
        moment = (moment.astimezone(zone) + step).astimezone(zone)
    return buckets


def _label(moment: datetime, kind: str, zone: tzinfo) -> str:
    local = moment.astimezone(zone)
    return local.strftime("%H:%M") if kind == "hour" else local.strftime("%a %d %b")


def _btc(sats: int | None) -> float:
    return round((sats or 0) / SATS_PER_BTC, 2)


def _key(moment: datetime, kind: str, zone: tzinfo) -> tuple:
    local = moment.astimezone(zone)
    return (local.year, local.month, local.day, local.hour if kind == "hour" else 0)


def volume_series(since: datetime, until: datetime, zone: tzinfo, kind: str = "hour") -> dict:
    """BTC moved by whales per hour, one series per flow, plus inflow against outflow."""
    rows = (
        # one row per RBF chain: a replacement moves the same coins again, not more of them
        WhaleTransaction.objects.filter(
            replaced_by__isnull=True, first_seen_at__gte=since, first_seen_at__lte=until
        )
        .annotate(bucket=Trunc("first_seen_at", kind, tzinfo=zone))
        .values("bucket", "flow")
        .annotate(sats=Sum("value"), whales=Count("id"))
    )
    buckets = _buckets(since, until, kind, zone)
    index = {_key(b, kind, zone): i for i, b in enumerate(buckets)}
    by_flow = {flow: [0.0] * len(buckets) for flow in Flow.values}
    counts = [0] * len(buckets)
    for row in rows:
        i = index.get(_key(row["bucket"], kind, zone))
        if i is None:
            continue
        by_flow[row["flow"]][i] += _btc(row["sats"])
        counts[i] += row["whales"]
    inflow = by_flow[Flow.EXCHANGE_INFLOW]
    outflow = by_flow[Flow.EXCHANGE_OUTFLOW]
    return {
        "labels": [_label(b, kind, zone) for b in buckets],
        "by_flow": {flow: [round(v, 2) for v in values] for flow, values in by_flow.items()},
        "whales": counts,
        "inflow": [round(v, 2) for v in inflow],
        "outflow": [round(v, 2) for v in outflow],
        "net": [round(i - o, 2) for i, o in zip(inflow, outflow, strict=True)],
        "totals": {
            "btc": round(sum(sum(v) for v in by_flow.values()), 2),
            "whales": sum(counts),
            "inflow": round(sum(inflow), 2),
            "outflow": round(sum(outflow), 2),
        },
    }


def urgency_distribution(since: datetime, until: datetime) -> dict:
    """How urgent the whales' latest predictions were: a 10-bin histogram, and the unscored."""
    scores = WhaleTransaction.objects.filter(
        replaced_by__isnull=True, first_seen_at__gte=since, first_seen_at__lte=until
    ).values_list("latest_urgency", flat=True)
    bins = [0] * URGENCY_BINS
    unscored = 0
    for score in scores:
        if score is None:
            unscored += 1
        else:
            bins[min(URGENCY_BINS - 1, int(score * URGENCY_BINS))] += 1
    edges = [i / URGENCY_BINS for i in range(URGENCY_BINS)]
    return {
        "labels": [f"{lo:.1f}–{lo + 1 / URGENCY_BINS:.1f}" for lo in edges],
        "counts": bins,
        "bands": [urgency.band_for(lo) for lo in edges],
        "unscored": unscored,
    }


def accuracy_series(since: datetime, until: datetime, kind: str, zone: tzinfo) -> dict:
    """Hit rate per urgency band and mean block error, per hour or day of resolution."""
    rows = (
        Prediction.objects.filter(
            outcome=PredictionOutcome.CONFIRMED,
            hit__isnull=False,
            resolved_at__gte=since,
            resolved_at__lte=until,
        )
        .annotate(bucket=Trunc("resolved_at", kind, tzinfo=zone))
        .values("bucket", "band")
        .annotate(
            resolved=Count("id"),
            hits=Count("id", filter=Q(hit=True)),
            error_sum=Sum("abs_error"),
        )
    )
    buckets = _buckets(since, until, kind, zone)
    index = {_key(b, kind, zone): i for i, b in enumerate(buckets)}
    resolved = {band: [0] * len(buckets) for band in BANDS}
    hits = {band: [0] * len(buckets) for band in BANDS}
    total_resolved = [0] * len(buckets)
    total_error = [0] * len(buckets)
    for row in rows:
        i = index.get(_key(row["bucket"], kind, zone))
        if i is None:
            continue
        if row["band"] in resolved:
            resolved[row["band"]][i] += row["resolved"]
            hits[row["band"]][i] += row["hits"]
        total_resolved[i] += row["resolved"]
        total_error[i] += row["error_sum"] or 0

    def rate(h: int, n: int) -> float | None:
        return round(100 * h / n, 1) if n else None

    return {
        "labels": [_label(b, kind, zone) for b in buckets],
        "hit_rate": {
            band: [rate(h, n) for h, n in zip(hits[band], resolved[band], strict=True)]
            for band in BANDS
        },
        "resolved": {band: resolved[band] for band in BANDS},
        "mean_error": [
            round(e / n, 2) if n else None for e, n in zip(total_error, total_resolved, strict=True)
        ],
    }


def accuracy_table(now: datetime) -> list[dict[str, Any]]:
    """The rolling windows (1 h … 90 d) by band, for the table under the charts."""
    rows = []
    for name, window in figures.accuracy_window_stats(now).items():
        bands = [window.overall] + [window.by_band[b] for b in (*BANDS, accuracy.UNSCORED_BAND)]
        rows.append({"window": name, "bands": bands})
    return rows


def stats_page_data(range_key: str, zone: tzinfo, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    chosen = RANGES[range_key]
    since = now - chosen.span
    coverage_in_range = stats.coverage(since)
    return {
        "range": chosen,
        "charts": {
            "volume": volume_series(since, now, zone),
            "urgency": urgency_distribution(since, now),
            "accuracy": accuracy_series(since, now, chosen.accuracy_bucket, zone),
            "coverage": coverage_in_range,
        },
        "coverage": coverage_in_range,
        "coverage_all": stats.coverage(),
        "windows": accuracy_table(now),
        "alarm_floor": accuracy.ALARM_HIT_RATE,
    }
