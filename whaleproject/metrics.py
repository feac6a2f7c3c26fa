"""Prometheus metrics: what each process exposes and the helpers other modules call.

Three kinds of numbers, each read where it is real:

- **The ingest process** keeps its own registry (``ingest_registry``) and serves it on
  ``WHALE_INGEST_METRICS_PORT`` (127.0.0.1 only). Its heartbeat hands the latest stats to
  ``IngestStatsCollector``; nothing is copied through Redis, so the figures are that process's own.
- **Events that happen in Celery workers** (detection latency, webhook latency) are observed in
  worker processes, often prefork children that come and go and may run on other hosts. They are
  accumulated in Redis hashes (``SharedHistogram``: one HINCRBY pipeline per observation; whale
  events and deliveries are rare) and read back by the web process at scrape time, so the
  histogram covers every worker on every host without a per-child port or a shared folder.
- **State in the database and the broker** (deliveries by status, accuracy, coverage, queue
  length) is read at scrape time by the web process and cached briefly, because a scrape every
  15 s must not turn into a table scan every 15 s.

The web endpoint is ``/metrics`` (whaleproject.views.metrics), guarded by a bearer token or an IP
allowlist.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

log = logging.getLogger(__name__)

NAMESPACE = "whalewatch"

# Frame received -> event committed (a few hundred ms when healthy) -> pushed to dashboards.
DETECTION_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
# One outbound webhook call, bounded by WHALE_OUTBOUND_TOTAL_TIMEOUT (10 s by default).
WEBHOOK_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


# --- histograms shared by every worker process through Redis ------------------------------------


class SharedHistogram:
    """A Prometheus histogram whose buckets live in one Redis hash.

    Fields are ``<labels json>|<bucket index>``, ``<labels json>|sum`` and ``<labels json>|count``;
    bucket counts are stored per bucket and made cumulative when collected. A failed write is
    logged at DEBUG and dropped: metrics must never fail a task.
    """

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]
    ):
        self.name = f"{NAMESPACE}_{name}"
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.buckets = tuple(sorted(buckets))

    def redis_key(self) -> str:
        from whaleproject.redis_client import key

        return key("metrics", self.name)

    def observe(self, value: float, **labels: str) -> None:
        if value != value or value < 0:  # NaN or a clock step backwards: not a latency
            return
        label_key = json.dumps([str(labels.get(n, "")) for n in self.labelnames])
        index = next((i for i, b in enumerate(self.buckets) if value <= b), len(self.buckets))
        try:
            from whaleproject.redis_client import get_redis

            pipe = get_redis().pipeline(transaction=False)
            redis_key = self.redis_key()
            pipe.hincrby(redis_key, f"{label_key}|{index}", 1)
            pipe.hincrby(redis_key, f"{label_key}|count", 1)
            pipe.hincrbyfloat(redis_key, f"{label_key}|sum", value)
            pipe.execute()
        except Exception:  # noqa: BLE001 - Redis down: lose the sample, keep the task
            log.debug("could not record %s", self.name, exc_info=True)

    def collect(self) -> Iterable[Metric]:
        from whaleproject.redis_client import get_redis

        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        try:
            raw = get_redis().hgetall(self.redis_key())
        except Exception:  # noqa: BLE001 - an empty histogram beats a failed scrape
            log.warning("could not read %s from Redis", self.name, exc_info=True)
            raw = {}
        series: dict[str, dict[str, float]] = {}
        for field, value in raw.items():
            label_key, _, slot = field.decode().rpartition("|")
            series.setdefault(label_key, {})[slot] = float(value)
        for label_key, slots in sorted(series.items()):
            running = 0.0
            buckets = []
            for index, bound in enumerate((*self.buckets, math.inf)):
                running += slots.get(str(index), 0.0)
                buckets.append(("+Inf" if bound == math.inf else str(bound), running))
            family.add_metric(json.loads(label_key), buckets, slots.get("sum", 0.0))
        yield family


detection_latency = SharedHistogram(
    "detection_latency_seconds",
    "Seconds from the mempool frame being received to the whale event being committed to the "
    "database (stage=committed) and pushed to dashboards (stage=pushed).",
    ["stage", "kind"],
    DETECTION_LATENCY_BUCKETS,
)
webhook_latency = SharedHistogram(
    "webhook_request_duration_seconds",
    "Duration of outbound webhook calls, by outcome (ok, http_error, error).",
    ["outcome"],
    WEBHOOK_LATENCY_BUCKETS,
)


def _as_timestamp(value: datetime | float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def observe_detection_latency(stage: str, kind: str, frame_received_at: datetime | float | None):
    """Record how long after its frame arrived an event reached ``stage`` (committed, pushed).

    The frame time comes from the ingest host's clock: keep hosts on NTP."""
    received = _as_timestamp(frame_received_at)
    if received is not None:
        detection_latency.observe(time.time() - received, stage=stage, kind=kind)


def observe_webhook_latency(seconds: float | None, outcome: str) -> None:
    """Called by the webhook transport once per attempt; outcome: ok, http_error or error."""
    if seconds is not None:
        webhook_latency.observe(seconds, outcome=outcome)


# --- state read at scrape time, cached --------------------------------------------------------


class CachedCollector:
    """Runs ``produce()`` at most once per ``ttl`` seconds; a failure yields nothing (and is
    logged), so one broken source does not take the whole scrape down."""

    ttl = 30.0

    def __init__(self):
        self._lock = threading.Lock()
        self._at = -math.inf
        self._families: list[Metric] = []

    def produce(self) -> list[Metric]:
        raise NotImplementedError

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            now = time.monotonic()
            if now - self._at >= self.ttl:
                try:
                    self._families = self.produce()
                except Exception:  # noqa: BLE001
                    log.warning("metrics collector %s failed", type(self).__name__, exc_info=True)
                    self._families = []
                self._at = now
            return list(self._families)


class DeliveryCollector(CachedCollector):
    ttl = 30.0

    def produce(self) -> list[Metric]:
        from django.db import close_old_connections
        from django.db.models import Count

        from alerts.models import Delivery, DeliveryStatus

        close_old_connections()
        family = GaugeMetricFamily(
            f"{NAMESPACE}_alert_deliveries",
            "Alert deliveries in the outbox by status and channel (email, webhook).",
            labels=["status", "channel"],
        )
        counts = {
            (row["status"], row["channel"]): row["n"]
            for row in Delivery.objects.values("status", "channel").annotate(n=Count("id"))
        }
        channels = sorted({channel for _, channel in counts} | {"email", "webhook"})
        for status in DeliveryStatus.values:
            for channel in channels:
                family.add_metric([status, channel], counts.get((status, channel), 0))
        return [family]


class AccuracyCollector(CachedCollector):
    # Accuracy reads up to 90 days of predictions; it moves slowly.
    ttl = 120.0

    def produce(self) -> list[Metric]:
        from datetime import UTC, timedelta

        from django.db import close_old_connections

        from detection import stats

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
        for window, figures in stats.cached_accuracy_windows().items():
            for band_stats in (figures.overall, *figures.by_band.values()):
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
            figures = stats.coverage(since)
            mined.add_metric([window], figures["mined"])
            if figures["coverage"] is not None:
                coverage.add_metric([window], figures["coverage"])
        return [hit_ratio, resolved, abs_error, coverage, mined]


class ServicesCollector(CachedCollector):
    """Broker queue length and the ages of the beat and ingest heartbeats (web-side view)."""

    ttl = 5.0

    def produce(self) -> list[Metric]:
        from whaleproject import health

        families: list[Metric] = []
        depth = health.celery_queue_depth()
        if depth is not None:
            waiting = GaugeMetricFamily(
                f"{NAMESPACE}_celery_queue_length",
                "Tasks waiting in the Celery broker queue.",
                labels=["queue"],
            )
            waiting.add_metric([depth.queue], depth.waiting)
            unacked = GaugeMetricFamily(
                f"{NAMESPACE}_celery_unacked_tasks",
                "Tasks taken by a worker and not yet acknowledged.",
            )
            unacked.add_metric([], depth.unacked)
            families += [waiting, unacked]
        heartbeat = health.read_ingest_heartbeat_safely()
        if heartbeat is not None and heartbeat.get("written_at"):
            age = GaugeMetricFamily(
                f"{NAMESPACE}_ingest_heartbeat_age_seconds",
                "Seconds since the ingest process last wrote its heartbeat.",
            )
            age.add_metric([], max(0.0, time.time() - float(heartbeat["written_at"])))
            families.append(age)
        beat_age = health.beat_age_seconds()
        if beat_age is not None:
            beat = GaugeMetricFamily(
                f"{NAMESPACE}_beat_age_seconds",
                "Seconds since Celery beat's heartbeat task last ran.",
            )
            beat.add_metric([], beat_age)
            families.append(beat)
        return families


class _Shared:
    def __init__(self, histogram: SharedHistogram):
        self.histogram = histogram

    def collect(self) -> Iterable[Metric]:
        return self.histogram.collect()


def build_web_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(namespace=f"{NAMESPACE}_web", registry=registry)
    for collector in (
        _Shared(detection_latency),
        _Shared(webhook_latency),
        DeliveryCollector(),
        AccuracyCollector(),
        ServicesCollector(),
    ):
        registry.register(collector)
    return registry


_web_registry: CollectorRegistry | None = None
_web_registry_lock = threading.Lock()


def web_registry() -> CollectorRegistry:
    global _web_registry
    with _web_registry_lock:
        if _web_registry is None:
            _web_registry = build_web_registry()
        return _web_registry


# --- the ingest process ---------------------------------------------------------------------

MEMORY_LEVELS = ("normal", "warning", "critical")

# stats key -> (metric suffix, help, kind)
_INGEST_GAUGES: tuple[tuple[str, str, str], ...] = (
    ("frames_per_s", "ingest_frames_per_second", "Mempool frames read per second."),
    ("tx_per_s", "ingest_transactions_per_second", "Mempool transactions added per second."),
    ("whales_per_s", "ingest_whales_per_second", "Whale transactions seen per second."),
    ("queue_depth", "ingest_queue_depth", "Whale events buffered, waiting for the broker."),
    ("mempool_size", "ingest_mempool_transactions", "Transactions held in the mempool model."),
    ("pending_whales", "ingest_pending_whales", "Whales being followed until they confirm."),
    ("events_unflushed", "ingest_events_unflushed", "Events left unpublished at the last stop."),
    ("tip_height", "ingest_tip_height", "Height of the best block the source reported."),
)
_INGEST_COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("frames", "ingest_frames", "Mempool frames read."),
    ("txs", "ingest_transactions", "Mempool transactions added."),
    ("whales", "ingest_whales", "Whale transactions seen."),
    ("reconnects", "ingest_reconnects", "Reconnections to the mempool source."),
    ("sequence_gaps", "ingest_sequence_gaps", "Gaps in the source's mempool sequence numbers."),
    ("malformed_frames", "ingest_malformed_frames", "Frames that could not be parsed."),
    ("shed_txs", "ingest_shed_transactions", "Low-fee transactions shed under memory pressure."),
    ("events_made", "ingest_events_made", "Whale lifecycle events produced."),
    ("events_published", "ingest_events_published", "Whale events handed to the broker."),
    ("publish_failures", "ingest_publish_failures", "Failed attempts to hand an event over."),
    ("events_overflowed", "ingest_events_overflowed", "Events that did not fit the buffer."),
    ("processing_errors", "ingest_processing_errors", "Frames whose handling raised."),
)


class IngestStatsCollector:
    """Exposes the ingest runner's latest heartbeat stats (set by ``update``)."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self.stats: dict[str, Any] | None = None
        self.updated_at: float | None = None
        self.clock = clock

    def update(self, stats: dict[str, Any]) -> None:
        self.stats = dict(stats)
        self.updated_at = self.clock()

    def collect(self) -> Iterable[Metric]:
        stats = self.stats
        if stats is None:
            return
        for key_name, suffix, doc in _INGEST_GAUGES:
            if stats.get(key_name) is not None:
                yield GaugeMetricFamily(f"{NAMESPACE}_{suffix}", doc, value=stats[key_name])
        for key_name, suffix, doc in _INGEST_COUNTERS:
            if stats.get(key_name) is not None:
                yield CounterMetricFamily(f"{NAMESPACE}_{suffix}", doc, value=stats[key_name])
        yield GaugeMetricFamily(
            f"{NAMESPACE}_ingest_connected",
            "1 while the mempool source is connected.",
            value=1 if stats.get("connected") else 0,
        )
        level = GaugeMetricFamily(
            f"{NAMESPACE}_ingest_memory_level",
            "1 for the current memory level (normal, warning, critical), 0 for the others.",
            labels=["level"],
        )
        current = stats.get("memory_level") or "normal"
        for name in sorted({*MEMORY_LEVELS, current}):
            level.add_metric([name], 1 if name == current else 0)
        yield level
        if stats.get("rss_mb") is not None:
            yield GaugeMetricFamily(
                f"{NAMESPACE}_ingest_rss_bytes",
                "Resident memory of the ingest process as its memory policy sees it.",
                value=float(stats["rss_mb"]) * 2**20,
            )
        if self.updated_at is not None:
            yield GaugeMetricFamily(
                f"{NAMESPACE}_ingest_stats_timestamp_seconds",
                "When these ingest figures were taken (unix time).",
                value=self.updated_at,
            )


ingest_stats = IngestStatsCollector()


def build_ingest_registry(collector: IngestStatsCollector = ingest_stats) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(namespace=f"{NAMESPACE}_ingest", registry=registry)
    registry.register(collector)
    return registry


def start_ingest_metrics_server(port: int, address: str = "127.0.0.1"):
    """Serve the ingest registry on ``address:port`` in a daemon thread; returns the server."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=address, registry=build_ingest_registry())
    return server


# --- the /metrics view ----------------------------------------------------------------------


def _client_allowed(remote_addr: str | None) -> bool:
    from ipaddress import ip_address

    from django.conf import settings

    if not remote_addr or not settings.WHALE_METRICS_ALLOW:
        return False
    try:
        address = ip_address(remote_addr)
    except ValueError:
        return False
    return any(address in network for network in settings.WHALE_METRICS_ALLOW)


def _bearer(request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def metrics_view(request):
    """Prometheus text format for a bearer token holder or an allowlisted address.

    No credentials: 401 with a Bearer challenge. A wrong token, or a caller outside the allowlist
    when no token is configured: 403. REMOTE_ADDR is the real client only because nginx
    overwrites X-Forwarded-For and daphne runs with --proxy-headers on loopback (deploy/).
    """
    import hmac

    from django.conf import settings
    from django.http import HttpResponse
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    if request.method != "GET":
        return HttpResponse(status=405, headers={"Allow": "GET"})
    token = _bearer(request)
    configured = settings.WHALE_METRICS_TOKEN
    if token is not None:
        granted = bool(configured) and hmac.compare_digest(token.encode(), configured.encode())
    else:
        granted = _client_allowed(request.META.get("REMOTE_ADDR"))
    if not granted:
        log.warning(
            "metrics: refused %s (%s)",
            request.META.get("REMOTE_ADDR"),
            "bad token" if token is not None else "no token",
        )
        if token is None and configured:
            return HttpResponse(
                "authentication required\n",
                status=401,
                content_type="text/plain",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    response = HttpResponse(generate_latest(web_registry()), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
