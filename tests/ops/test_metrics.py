"""/metrics: refuses anonymous callers, and exposes the figures the operations guide alerts on."""

import time

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.records.helpers import event, load_esplora, projection
from whaleproject import metrics
from whaleproject.redis_client import get_redis

TOKEN = "metrics-token-0123456789abcdef"
WEB_FAMILIES = (
    "whalewatch_detection_latency_seconds",
    "whalewatch_webhook_request_duration_seconds",
    "whalewatch_alert_deliveries",
    "whalewatch_prediction_hit_ratio",
    "whalewatch_predictions_resolved",
    "whalewatch_coverage_ratio",
    "whalewatch_whales_mined",
    "whalewatch_celery_queue_length",
    "whalewatch_web_process_resident_memory_bytes",
)
INGEST_FAMILIES = (
    "whalewatch_ingest_frames",
    "whalewatch_ingest_transactions",
    "whalewatch_ingest_frames_per_second",
    "whalewatch_ingest_transactions_per_second",
    "whalewatch_ingest_whales_per_second",
    "whalewatch_ingest_queue_depth",
    "whalewatch_ingest_reconnects",
    "whalewatch_ingest_sequence_gaps",
    "whalewatch_ingest_memory_level",
    "whalewatch_ingest_rss_bytes",
    "whalewatch_ingest_process_resident_memory_bytes",
)


@pytest.fixture(autouse=True)
def fresh_metrics(settings):
    settings.WHALE_METRICS_TOKEN = TOKEN
    settings.WHALE_METRICS_ALLOW = []
    settings._metrics_networks = []
    for histogram in (metrics.detection_latency, metrics.webhook_latency):
        get_redis().delete(histogram.redis_key())
    metrics._web_registry = None  # cached collectors would hide this test's rows
    yield
    metrics._web_registry = None


def scrape(client, **headers):
    return client.get("/metrics", **headers)


def test_anonymous_caller_gets_401_with_a_bearer_challenge(client, db):
    response = scrape(client)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"whalewatch" not in response.content


def test_wrong_token_gets_403(client, db):
    assert scrape(client, HTTP_AUTHORIZATION="Bearer not-the-token-at-all").status_code == 403


def test_without_token_or_allowlist_everyone_is_refused(client, db, settings):
    settings.WHALE_METRICS_TOKEN = ""
    assert scrape(client).status_code == 403
    assert scrape(client, HTTP_AUTHORIZATION="Bearer anything-at-all-here").status_code == 403


def test_allowlisted_address_needs_no_token(client, db, settings):
    from ipaddress import ip_network

    settings.WHALE_METRICS_ALLOW = ["10.9.0.0/16"]
    settings._metrics_networks = [ip_network("10.9.0.0/16")]
    assert scrape(client, REMOTE_ADDR="10.9.3.4").status_code == 200
    assert scrape(client, REMOTE_ADDR="10.8.3.4").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_token_holder_sees_every_metric(client):
    from alerts.models import DeliveryStatus
    from detection.recording import record_event

    tx = next(iter(load_esplora("whales_block_277647.esplora_txs.json").values()))
    now = time.time()
    record_event(
        event("seen", tx, at=now, frame_received_at=now - 0.3, projection=projection(tip=1))
    )
    metrics.observe_webhook_latency(0.42, "ok")

    response = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    families = {family.name for family in text_string_to_metric_families(text)}
    assert set(WEB_FAMILIES) <= families
    committed = [
        line
        for line in text.splitlines()
        if line.startswith("whalewatch_detection_latency_seconds_count")
        and 'stage="committed"' in line
    ]
    assert committed and float(committed[0].rsplit(" ", 1)[1]) == 1.0
    assert 'whalewatch_webhook_request_duration_seconds_bucket{le="0.5",outcome="ok"} 1.0' in text
    for status in DeliveryStatus.values:
        assert f'whalewatch_alert_deliveries{{channel="webhook",status="{status}"}}' in text


def test_ingest_registry_exposes_the_heartbeat_stats():
    collector = metrics.IngestStatsCollector()
    collector.update(
        {
            "frames": 1000,
            "txs": 8000,
            "frames_per_s": 12.5,
            "tx_per_s": 80.0,
            "whales_per_s": 0.01,
            "queue_depth": 3,
            "reconnects": 2,
            "sequence_gaps": 1,
            "memory_level": "warning",
            "rss_mb": 410.0,
            "connected": True,
        }
    )
    text = generate_latest(metrics.build_ingest_registry(collector)).decode()
    samples = {
        (sample.name, sample.labels.get("level")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    families = {family.name for family in text_string_to_metric_families(text)}
    assert set(INGEST_FAMILIES) <= families
    assert samples[("whalewatch_ingest_memory_level", "warning")] == 1
    assert samples[("whalewatch_ingest_memory_level", "normal")] == 0
    assert samples[("whalewatch_ingest_reconnects_total", None)] == 2
    assert samples[("whalewatch_ingest_sequence_gaps_total", None)] == 1
    assert samples[("whalewatch_ingest_rss_bytes", None)] == 410.0 * 2**20
    assert samples[("whalewatch_ingest_queue_depth", None)] == 3


def test_ingest_registry_exposes_block_scans_and_rest_failures():
    collector = metrics.IngestStatsCollector()
    collector.update(
        {
            "connected": True,
            "rest": {
                "requests": {"block_summary": 4, "tx": 3},
                "failures": {"block_raw": {"truncated": 1, "http_429": 2}},
            },
            "block_scans": {
                "blocks_scanned": 4,
                "catch_up_gap_blocks": 7,
                "last_scanned_height": 9,
            },
        }
    )
    text = generate_latest(metrics.build_ingest_registry(collector)).decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("whalewatch_ingest_rest_requests_total", (("endpoint", "tx"),))] == 3
    failures = "whalewatch_ingest_rest_failures_total"
    assert samples[(failures, (("endpoint", "block_raw"), ("reason", "http_429")))] == 2
    assert samples[(failures, (("endpoint", "block_raw"), ("reason", "truncated")))] == 1
    assert samples[("whalewatch_ingest_blocks_scanned_total", ())] == 4
    assert samples[("whalewatch_ingest_catch_up_gap_blocks_total", ())] == 7
    assert samples[("whalewatch_ingest_last_scanned_height", ())] == 9


def test_shared_histogram_is_cumulative_across_processes():
    histogram = metrics.SharedHistogram("test_ops_seconds", "test", ["stage"], (0.1, 1.0))
    get_redis().delete(histogram.redis_key())
    for value in (0.05, 0.5, 0.7, 3.0):
        histogram.observe(value, stage="x")
    (family,) = histogram.collect()
    samples = {(s.name, s.labels.get("le")): s.value for s in family.samples}
    assert samples[("whalewatch_test_ops_seconds_bucket", "0.1")] == 1
    assert samples[("whalewatch_test_ops_seconds_bucket", "1.0")] == 3
    assert samples[("whalewatch_test_ops_seconds_bucket", "+Inf")] == 4
    assert samples[("whalewatch_test_ops_seconds_count", None)] == 4
    assert samples[("whalewatch_test_ops_seconds_sum", None)] == pytest.approx(4.25)
    get_redis().delete(histogram.redis_key())
