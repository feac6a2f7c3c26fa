"""Accuracy and coverage figures from the database, computed by detection.domain.accuracy."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from django.core.cache import cache
from django.core.mail import mail_admins
from django.db.models import Count, Q

from detection.domain import accuracy
from detection.models import Prediction, PredictionOutcome, WhaleStatus, WhaleTransaction

ALARM_CACHE_KEY = "accuracy-alarm"
ALARM_LAST_SENT_KEY = "accuracy-alarm-last-sent"


def resolved_outcomes(since: datetime) -> list[accuracy.Outcome]:
    rows = (
        Prediction.objects.filter(resolved_at__gt=since)
        .exclude(outcome=PredictionOutcome.OPEN)
        .values_list("resolved_at", "band", "outcome", "predicted_blocks", "actual_blocks")
    )
    outcomes = []
    for resolved_at, band, outcome, predicted, actual in rows.iterator(chunk_size=5000):
        if outcome == PredictionOutcome.CONFIRMED and (predicted is None or actual is None):
            continue  # confirmed, but the prediction had no block count to score
        outcomes.append(
            accuracy.Outcome(
                resolved_at=resolved_at.timestamp(),
                band=band or None,
                outcome=outcome,
                predicted_blocks=predicted,
                actual_blocks=actual,
            )
        )
    return outcomes


def accuracy_windows(now: float | None = None) -> dict[str, accuracy.WindowStats]:
    now = time.time() if now is None else now
    since = datetime.fromtimestamp(now - accuracy.WINDOWS[-1][1], tz=UTC)
    return accuracy.rolling_windows(resolved_outcomes(since), now)


def cached_accuracy_windows(now: datetime | None = None) -> dict[str, accuracy.WindowStats]:
    """The same windows from beat's cached SQL aggregate (detection.api_stats).

    Pages and /metrics read these: `accuracy_windows` walks 90 days of predictions in Python,
    which is exact and fine for the five-minute alarm but seconds of work per request at scale.
    """
    from django.utils import timezone

    from detection.api_stats import cached_accuracy_windows as cached_figures

    def band(name: str, figures: dict) -> accuracy.BandStats:
        fields = ("resolved", "hits", "hit_rate", "mean_abs_error", "replaced", "dropped")
        return accuracy.BandStats(band=name, **{field: figures[field] for field in fields})

    return {
        name: accuracy.WindowStats(
            window=name,
            seconds=window["seconds"],
            overall=band(accuracy.ALL_BANDS, window["overall"]),
            by_band={key: band(key, figures) for key, figures in window["by_band"].items()},
        )
        for name, window in cached_figures(now or timezone.now()).items()
    }


def coverage(since: datetime | None = None) -> dict[str, float | int | None]:
    """Share of whales mined (since `since`) that were seen in the mempool first.

    One index-only pass over `whale_coverage_window`: COUNT(*) and a filtered count of a column
    the index carries, not COUNT(id), which would read the table.
    """
    mined = WhaleTransaction.objects.filter(status=WhaleStatus.CONFIRMED)
    if since is not None:
        mined = mined.filter(confirmed_at__gt=since)
    counts = mined.aggregate(
        mined=Count("*"),
        seen_first=Count("seen_in_mempool", filter=Q(seen_in_mempool=True)),
    )
    return {**counts, "coverage": accuracy.coverage(counts["seen_first"], counts["mined"])}


def check_accuracy_alarm(now: float | None = None) -> accuracy.AlarmDecision:
    """Mail the operators when 24 h accuracy is poor (at most hourly); keep the banner state."""
    now = time.time() if now is None else now
    day = accuracy_windows(now)["24h"].overall
    last_sent = cache.get(ALARM_LAST_SENT_KEY)
    decision = accuracy.low_accuracy_alarm(day.resolved, day.hits, now=now, last_alert_at=last_sent)
    low = (
        day.resolved >= accuracy.ALARM_MIN_RESOLVED
        and day.hit_rate is not None
        and day.hit_rate < accuracy.ALARM_HIT_RATE
    )
    if low:
        cache.set(
            ALARM_CACHE_KEY,
            {"hit_rate": day.hit_rate, "resolved": day.resolved, "since": now},
            timeout=2 * 3600,
        )
    else:
        cache.delete(ALARM_CACHE_KEY)
    if decision.alert:
        mail_admins(
            "Whale Watch prediction accuracy is low",
            f"Over the last 24 hours {day.hits} of {day.resolved} resolved predictions were hits "
            f"({day.hit_rate:.0%}), below the {accuracy.ALARM_HIT_RATE:.0%} floor.\n\n"
            "See docs/OPERATIONS.md, 'Low accuracy'.",
        )
        cache.set(ALARM_LAST_SENT_KEY, now, timeout=24 * 3600)
    return decision


def accuracy_alarm_state() -> dict | None:
    """For the banner: the low-accuracy state, or None when accuracy is fine."""
    return cache.get(ALARM_CACHE_KEY)
