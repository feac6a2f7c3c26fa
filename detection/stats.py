"""Accuracy and coverage figures from the database, computed by detection.domain.accuracy."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from django.core.cache import cache
from django.core.mail import mail_admins
from django.db import connection, transaction
from django.db.models import Case, Count, F, IntegerField, Q, Sum, Value, When
from django.db.models.functions import Abs, Coalesce, Greatest, NullIf, Trunc

from detection.domain import accuracy
from detection.models import (
    Prediction,
    PredictionHourlyOutcome,
    PredictionOutcome,
    WhaleHourlyCoverage,
    WhaleHourlyVolume,
    WhaleStatus,
    WhaleTransaction,
)

ALARM_CACHE_KEY = "accuracy-alarm"
ALARM_LAST_SENT_KEY = "accuracy-alarm-last-sent"


def resolved_outcomes(since: datetime) -> list[accuracy.Outcome]:
    rows = (
        Prediction.objects.filter(resolved_at__gt=since, scored=True)
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


def coverage(since: datetime | None = None) -> dict[str, float | int | None]:
    """Share of whales mined (since `since`) that were seen in the mempool first.

    One index-only pass over `whale_coverage_window`: COUNT(*) and a filtered count of a column
    the index carries, not COUNT(id), which would read the table.
    """
    mined = WhaleTransaction.objects.filter(status=WhaleStatus.CONFIRMED)
    if since is not None:
        mined = mined.filter(confirmed_at__gt=since)
    counts = coverage_counts(mined)
    return {**counts, "coverage": accuracy.coverage(counts["seen_first"], counts["mined"])}


def coverage_counts(confirmed) -> dict[str, int]:
    return confirmed.aggregate(
        mined=Count("*"),
        seen_first=Count("seen_in_mempool", filter=Q(seen_in_mempool=True)),
    )


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


# --- rollups: what one row contributes, and the same sums aggregated from raw rows ------------
#
# `*_contribution` are the per-row rules detection.recording applies as rows change; `*_sums`
# aggregate raw rows in SQL for the backfill, the retention purge and the tests, which hold the
# two equal. Keys are (start of the UTC hour, flow) and (start of the UTC hour, band).

VolumeKey = tuple[datetime, str]
OutcomeKey = tuple[datetime, str]


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def volume_contribution(
    *, first_seen_at: datetime, flow: str, status: str, value: int, transfer: int
) -> tuple[VolumeKey, tuple[int, int, int]] | None:
    if status == WhaleStatus.REPLACED:
        return None
    return (hour_of(first_seen_at), flow), (1, value, transfer)


def coverage_contribution(
    *, status: str, confirmed_at: datetime | None, seen_in_mempool: bool
) -> tuple[tuple[datetime], tuple[int, int]] | None:
    # Confirmed "somewhere we were not told" leaves confirmed_at empty: in no coverage window.
    if status != WhaleStatus.CONFIRMED or confirmed_at is None:
        return None
    return (hour_of(confirmed_at),), (1, 1 if seen_in_mempool else 0)


def outcome_contribution(
    *,
    resolved_at: datetime | None,
    band: str,
    outcome: str,
    predicted_blocks: int | None,
    actual_blocks: int | None,
    scored: bool = True,
) -> tuple[OutcomeKey, tuple[int, int, int, int, int]] | None:
    if not scored or outcome == PredictionOutcome.OPEN or resolved_at is None:
        return None  # one scored outcome per chain: later predictions are for display
    if outcome == PredictionOutcome.CONFIRMED and (
        predicted_blocks is None or actual_blocks is None
    ):
        return None  # the domain cannot score it (see resolved_outcomes)
    # The domain's own Outcome decides hit and error, so the sums cannot drift from its rules.
    scored = accuracy.Outcome(
        resolved_at=resolved_at.timestamp(),
        band=band or None,
        outcome=outcome,
        predicted_blocks=predicted_blocks,
        actual_blocks=actual_blocks,
    )
    key = (hour_of(resolved_at), band or accuracy.UNSCORED_BAND)
    if outcome == PredictionOutcome.CONFIRMED:
        return key, (1, 1 if scored.hit else 0, scored.abs_error or 0, 0, 0)
    if outcome == PredictionOutcome.REPLACED:
        return key, (0, 0, 0, 1, 0)
    return key, (0, 0, 0, 0, 1)


def volume_sums(whales) -> dict[VolumeKey, tuple[int, int, int]]:
    """{(hour, flow): (count, value, transfer)} of a WhaleTransaction queryset."""
    rows = (
        whales.exclude(status=WhaleStatus.REPLACED)
        .annotate(hour=Trunc("first_seen_at", "hour", tzinfo=UTC))
        .values("hour", "flow")
        .annotate(n=Count("id"), value_sum=Sum("value"), transfer_sum=Sum("transfer"))
        .order_by()
    )
    return {
        (row["hour"], row["flow"]): (row["n"], row["value_sum"], row["transfer_sum"])
        for row in rows
    }


def coverage_sums(whales) -> dict[tuple[datetime], tuple[int, int]]:
    """{(hour,): (mined, seen_first)} of a WhaleTransaction queryset, by confirmed_at."""
    rows = (
        whales.filter(status=WhaleStatus.CONFIRMED)
        .exclude(confirmed_at=None)
        .annotate(hour=Trunc("confirmed_at", "hour", tzinfo=UTC))
        .values("hour")
        .annotate(mined=Count("id"), seen_first=Count("id", filter=Q(seen_in_mempool=True)))
        .order_by()
    )
    return {(row["hour"],): (row["mined"], row["seen_first"]) for row in rows}


def rolled_up_coverage(since: datetime) -> dict[str, float | int | None]:
    """`coverage(since)` from WhaleHourlyCoverage: the hours after `since`'s own hour whole, and
    the rest of that hour from the rows (one index-only scan of at most an hour)."""
    first_whole = hour_of(since) + timedelta(hours=1)
    whole = WhaleHourlyCoverage.objects.filter(hour__gte=first_whole).aggregate(
        mined=Sum("mined"), seen_first=Sum("seen_first")
    )
    edge = coverage_counts(
        WhaleTransaction.objects.filter(
            status=WhaleStatus.CONFIRMED, confirmed_at__gt=since, confirmed_at__lt=first_whole
        )
    )
    mined = (whole["mined"] or 0) + edge["mined"]
    seen_first = (whole["seen_first"] or 0) + edge["seen_first"]
    return {
        "mined": mined,
        "seen_first": seen_first,
        "coverage": accuracy.coverage(seen_first, mined),
    }


def _hit_sql() -> Q:
    """accuracy.score's hit rule in SQL: within one block, or 8+ for the catch-all block."""
    catch_all = accuracy.CATCH_ALL_BLOCKS
    tolerance = accuracy.HIT_TOLERANCE_BLOCKS
    point = Q(predicted_blocks__lt=catch_all) & Q(
        actual_blocks__gte=F("predicted_blocks") - tolerance,
        actual_blocks__lte=F("predicted_blocks") + tolerance,
    )
    return point | Q(predicted_blocks__gte=catch_all, actual_blocks__gte=catch_all)


def _error_sql():
    """accuracy.score's block error in SQL."""
    catch_all = accuracy.CATCH_ALL_BLOCKS
    return Case(
        When(
            predicted_blocks__gte=catch_all,
            then=Greatest(Value(catch_all) - F("actual_blocks"), Value(0)),
        ),
        default=Abs(F("actual_blocks") - F("predicted_blocks")),
        output_field=IntegerField(),
    )


def outcome_aggregates(prefix: str = "", window: Q | None = None) -> dict:
    """The accuracy sums as SQL aggregates over predictions, optionally only those in `window`."""
    confirmed = Q(outcome=PredictionOutcome.CONFIRMED)
    inside = window if window is not None else Q()
    return {
        f"{prefix}resolved": Count("id", filter=inside & confirmed),
        f"{prefix}hits": Count("id", filter=inside & confirmed & _hit_sql()),
        f"{prefix}error_sum": Coalesce(Sum(_error_sql(), filter=inside & confirmed), 0),
        f"{prefix}replaced": Count("id", filter=inside & Q(outcome=PredictionOutcome.REPLACED)),
        f"{prefix}dropped": Count("id", filter=inside & Q(outcome=PredictionOutcome.DROPPED)),
    }


def scorable(predictions):
    """Resolved predictions the accuracy windows count, with their band key."""
    confirmed = Q(outcome=PredictionOutcome.CONFIRMED)
    return (
        predictions.filter(scored=True)
        .exclude(outcome=PredictionOutcome.OPEN)
        .exclude(resolved_at=None)
        .exclude(confirmed & (Q(predicted_blocks=None) | Q(actual_blocks=None)))
        .annotate(band_key=Coalesce(NullIf("band", Value("")), Value(accuracy.UNSCORED_BAND)))
    )


def outcome_sums(predictions) -> dict[OutcomeKey, tuple[int, int, int, int, int]]:
    """{(hour, band): (resolved, hits, error_sum, replaced, dropped)} of a Prediction queryset."""
    rows = (
        scorable(predictions)
        .annotate(hour=Trunc("resolved_at", "hour", tzinfo=UTC))
        .values("hour", "band_key")
        .annotate(**outcome_aggregates())
        .order_by()
    )
    return {
        (row["hour"], row["band_key"]): tuple(row[f] for f in PredictionHourlyOutcome.SUMS)
        for row in rows
    }


def rebuild_rollups(
    whales=None,
    predictions=None,
    volume_model=None,
    outcome_model=None,
    coverage_model=None,
    *,
    since: datetime | None = None,
) -> tuple[int, int]:
    """Recompute the rollups from the raw rows (the migration's backfill; also for repairs).

    Takes the models as arguments so the migration can pass its historical ones. With `since`,
    only the hours from `since`'s own hour on are rebuilt (beat's recent-hours repair). Returns
    the number of volume and outcome rows written. On PostgreSQL the whale and prediction tables
    are locked against writes (reads go on) from the first read to the commit, so an event
    recorded meanwhile waits instead of being lost from the sums; workers may keep running.
    """
    whales = WhaleTransaction.objects.all() if whales is None else whales
    predictions = Prediction.objects.all() if predictions is None else predictions
    volume_model = volume_model or WhaleHourlyVolume
    outcome_model = outcome_model or PredictionHourlyOutcome
    coverage_model = coverage_model or WhaleHourlyCoverage
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                tables = ", ".join(
                    connection.ops.quote_name(model._meta.db_table)
                    for model in (whales.model, predictions.model)
                )
                cursor.execute(f"LOCK TABLE {tables} IN SHARE MODE")
        first_hour = None if since is None else hour_of(since)
        volumes = volume_sums(_from_hour(whales, "first_seen_at", first_hour))
        outcomes = outcome_sums(_from_hour(predictions, "resolved_at", first_hour))
        coverage_rows = coverage_sums(_from_hour(whales, "confirmed_at", first_hour))
        for model in (volume_model, outcome_model, coverage_model):
            _from_hour(model.objects.all(), "hour", first_hour).delete()
        coverage_model.objects.bulk_create(
            [
                coverage_model(hour=hour, mined=mined, seen_first=seen_first)
                for (hour,), (mined, seen_first) in coverage_rows.items()
            ],
            batch_size=2000,
        )
        volume_model.objects.bulk_create(
            [
                volume_model(hour=hour, flow=flow, count=n, value=value, transfer=transfer)
                for (hour, flow), (n, value, transfer) in volumes.items()
            ],
            batch_size=2000,
        )
        outcome_model.objects.bulk_create(
            [
                outcome_model(
                    hour=hour,
                    band=band,
                    **dict(zip(PredictionHourlyOutcome.SUMS, sums, strict=True)),
                )
                for (hour, band), sums in outcomes.items()
            ],
            batch_size=2000,
        )
    return len(volumes), len(outcomes)


def _from_hour(queryset, field: str, first_hour: datetime | None):
    return queryset if first_hour is None else queryset.filter(**{f"{field}__gte": first_hour})


def rebuild_recent_rollups(hours: int, now: datetime | None = None) -> tuple[int, int]:
    """Rebuild the last `hours` hours (and the current one), so a hand edit heals on its own."""
    now = now or datetime.now(tz=UTC)
    return rebuild_rollups(since=now - timedelta(hours=hours))
