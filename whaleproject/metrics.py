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

import hmac
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from ipaddress import ip_address
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from whaleproject import health
from whaleproject.redis_client import get_redis, key

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
        return key("metrics", self.name)

    def observe(self, value: float, **labels: str) -> None:
        if value != value or value < 0:  # NaN or a clock step backwards: not a latency
            return
        label_key = json.dumps([str(labels.get(n, "")) for n in self.labelnames])
        index = next((i for i, b in enumerate(self.buckets) if value <= b), len(self.buckets))
        try:
            pipe = get_redis().pipeline(transaction=False)
            redis_key = self.redis_key()
            pipe.hincrby(redis_key, f"{label_key}|{index}", 1)
            pipe.hincrby(redis_key, f"{label_key}|count", 1)
            pipe.hincrbyfloat(redis_key, f"{label_key}|sum", value)
            pipe.execute()
        except Exception:  # noqa: BLE001 - Redis down: lose the sample, keep the task
            log.debug("could not record %s", self.name, exc_info=True)

    def collect(self) -> Iterable[Metric]:
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


class ServicesCollector(CachedCollector):
    """Broker queue length and the ages of the beat and ingest heartbeats (web-side view)."""

    ttl = 5.0

    def produce(self) -> list[Metric]:
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


# Collectors of the apps, each registered by its AppConfig.ready() (this module imports no app).
_app_collectors: list[Callable[[], Any]] = []


def register_web_collector(factory: Callable[[], Any]) -> None:
    """Add a collector (a class or factory, called once per registry built) to /metrics."""
    if factory not in _app_collectors:
        _app_collectors.append(factory)


def build_web_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(namespace=f"{NAMESPACE}_web", registry=registry)
    for collector in (
        _Shared(detection_latency),
        _Shared(webhook_latency),
        *(factory() for factory in _app_collectors),
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


# Block scans (issue 13): stats["block_scans"] key -> (metric suffix, help).
_BLOCK_SCAN_COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("blocks_scanned", "ingest_blocks_scanned", "Blocks whose every whale was found."),
    ("block_scan_failures", "ingest_block_scan_failures", "Block scan tries that failed."),
    ("block_scans_abandoned", "ingest_block_scans_abandoned", "Blocks given up after retries."),
    ("catch_up_blocks", "ingest_catch_up_blocks", "Missed blocks scanned on catching up."),
    (
        "catch_up_gap_blocks",
        "ingest_catch_up_gap_blocks",
        "Missed blocks beyond the catch-up bound, never scanned.",
    ),
    ("block_only_whales", "ingest_block_only_whales", "Whales first found in a block scan."),
)


def _block_scan_metrics(stats: dict[str, Any]) -> Iterable[Metric]:
    scans = stats.get("block_scans") or {}
    for key_name, suffix, doc in _BLOCK_SCAN_COUNTERS:
        if scans.get(key_name) is not None:
            yield CounterMetricFamily(f"{NAMESPACE}_{suffix}", doc, value=scans[key_name])
    if scans.get("last_scanned_height") is not None:
        yield GaugeMetricFamily(
            f"{NAMESPACE}_ingest_last_scanned_height",
            "Height of the last block scanned for whales.",
            value=scans["last_scanned_height"],
        )
    rest = stats.get("rest") or {}
    if not rest:
        return
    requests = CounterMetricFamily(
        f"{NAMESPACE}_ingest_rest_requests",
        "REST requests to the mempool source, by endpoint.",
        labels=["endpoint"],
    )
    for endpoint, count in sorted((rest.get("requests") or {}).items()):
        requests.add_metric([endpoint], count)
    yield requests
    failures = CounterMetricFamily(
        f"{NAMESPACE}_ingest_rest_failures",
        "Failed REST requests and unusable answers from the mempool source, by endpoint and reason.",
        labels=["endpoint", "reason"],
    )
    for endpoint, reasons in sorted((rest.get("failures") or {}).items()):
        for reason, count in sorted(reasons.items()):
            failures.add_metric([endpoint, reason], count)
    yield failures


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
        yield from _block_scan_metrics(stats)
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
    server, _thread = start_http_server(port, addr=address, registry=build_ingest_registry())
    return server


# --- the /metrics view ----------------------------------------------------------------------


def _client_allowed(remote_addr: str | None) -> bool:
    if not remote_addr or not settings.WHALE_METRICS_ALLOW:
        return False
    try:
        address = ip_address(remote_addr)
    except ValueError:
        return False
    return any(address in network for network in settings._metrics_networks)


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
