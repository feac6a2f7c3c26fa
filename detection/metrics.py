"""detection's figures on /metrics, read at scrape time (registered in DetectionConfig.ready)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import close_old_connections
from prometheus_client.core import GaugeMetricFamily, Metric

from detection import figures, stats
from whaleproject.metrics import NAMESPACE, CachedCollector


class AccuracyCollector(CachedCollector):
    # Accuracy reads up to 90 days of predictions; it moves slowly.
    ttl = 120.0

    def produce(self) -> list[Metric]:
        close_old_connections()
        hit_ratio = GaugeMetricFamily(
            f"{NAMESPACE}_prediction_hit_ratio",
            "Share of resolved predictions that confirmed within the predicted blocks.",
            labels=["window", "band"],
        )
        resolved = GaugeMetricFamily(
            f"{NAMESPACE}_predictions_resolved",
            "Predictions resolved by a confirmation in the window.",
            labels=["window", "band"],
        )
        abs_error = GaugeMetricFamily(
            f"{NAMESPACE}_prediction_mean_abs_error_blocks",
            "Mean absolute error of resolved predictions, in blocks.",
            labels=["window", "band"],
        )
        for window, window_stats in figures.accuracy_window_stats().items():
            for band_stats in (window_stats.overall, *window_stats.by_band.values()):
                labels = [window, band_stats.band]
                resolved.add_metric(labels, band_stats.resolved)
                if band_stats.hit_rate is not None:
                    hit_ratio.add_metric(labels, band_stats.hit_rate)
                if band_stats.mean_abs_error is not None:
                    abs_error.add_metric(labels, band_stats.mean_abs_error)
        coverage = GaugeMetricFamily(
            f"{NAMESPACE}_coverage_ratio",
            "Share of whales mined that were seen in the mempool first.",
            labels=["window"],
        )
        mined = GaugeMetricFamily(
            f"{NAMESPACE}_whales_mined", "Whales confirmed in the window.", labels=["window"]
        )
        now = datetime.now(tz=UTC)
        for window, since in (("24h", now - timedelta(days=1)), ("7d", now - timedelta(days=7))):
            seen = stats.coverage(since)
            mined.add_metric([window], seen["mined"])
            if seen["coverage"] is not None:
                coverage.add_metric([window], seen["coverage"])
        return [hit_ratio, resolved, abs_error, coverage, mined]
