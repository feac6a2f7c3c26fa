"""Accuracy figures as the pages, /metrics and the API read them: from the rollups, cached.

detection/domain/accuracy.py defines every figure (and is the tests' oracle); detection.stats
computes them exactly from the rows (the five-minute alarm); detection.api.stats aggregates the
hourly rollups in SQL and beat caches the result. This module turns that cache into the domain's
WindowStats for the stats page and /metrics.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from detection.api.stats import cached_accuracy_windows as cached_figures
from detection.domain import accuracy


def accuracy_window_stats(now: datetime | None = None) -> dict[str, accuracy.WindowStats]:
    """stats.accuracy_windows's figures from beat's cached SQL aggregate (detection.api.stats).

    Pages and /metrics read these: `accuracy_windows` walks 90 days of predictions in Python,
    which is exact and fine for the five-minute alarm but seconds of work per request at scale.
    """

    def band(name: str, figures: dict) -> accuracy.BandStats:
        fields = ("resolved", "hits", "hit_rate", "mean_abs_error", "replaced", "dropped")
        return accuracy.BandStats(
            band=name,
            **{field: figures[field] for field in fields},
            coverage=figures.get("coverage"),
        )

    return {
        name: accuracy.WindowStats(
            window=name,
            seconds=window["seconds"],
            overall=band(accuracy.ALL_BANDS, window["overall"]),
            by_band={key: band(key, figures) for key, figures in window["by_band"].items()},
        )
        for name, window in cached_figures(now or timezone.now()).items()
    }
