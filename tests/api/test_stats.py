"""GET /api/v1/stats/: volumes and flows per bucket, accuracy by band, coverage, source health."""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta

import pytest
import time_machine

from detection import stats as domain_stats
from detection.api.stats import accuracy_windows
from detection.models import Flow, Prediction, WhaleStatus
from detection.stats import rebuild_rollups
from tests.api.conftest import SATS, T0, error_of, make_whale
from whaleproject import health

pytestmark = pytest.mark.django_db

NOW = T0 + timedelta(minutes=30)  # 12:30 UTC on 2026-03-01


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def test_daily_volumes_and_flows(frozen, api):
    make_whale(btc=100, flow=Flow.EXCHANGE_INFLOW, first_seen_at=NOW - timedelta(minutes=5))
    make_whale(btc=200, flow=Flow.EXCHANGE_OUTFLOW, first_seen_at=T0 - timedelta(hours=1))
    make_whale(btc=400, flow=Flow.EXCHANGE_INFLOW, first_seen_at=T0 - timedelta(days=1))
    # an RBF-replaced transaction is not counted: its replacement carries the money
    make_whale(btc=999, status=WhaleStatus.REPLACED, first_seen_at=NOW - timedelta(minutes=1))
    make_whale(btc=800, first_seen_at=T0 - timedelta(days=3))  # outside days=2
    rebuild_rollups()  # make_whale writes rows directly, not through detection.recording

    body = api.get("/api/v1/stats/?bucket=day&days=2").json()
    assert (body["bucket"], body["days"]) == ("day", 2)
    assert body["since"] == "2026-02-28T00:00:00Z"
    assert [b["start"] for b in body["volumes"]] == ["2026-02-28T00:00:00Z", "2026-03-01T00:00:00Z"]
    yesterday, today = body["volumes"]
    assert (yesterday["count"], yesterday["value_btc"]) == (1, "400.00000000")
    assert (today["count"], today["value_sat"]) == (2, 300 * SATS)
    assert today["flows"]["exchange_inflow"] == {
        "count": 1,
        "transfer_btc": "100.00000000",
        "transfer_sat": 100 * SATS,
    }
    assert today["flows"]["exchange_outflow"]["count"] == 1
    assert set(today["flows"]) == set(Flow.values)
    assert body["totals"]["count"] == 3 and body["totals"]["value_btc"] == "700.00000000"
    assert body["totals"]["flows"]["exchange_inflow"]["transfer_btc"] == "500.00000000"


def test_hourly_buckets_cover_the_days_with_empty_hours_as_zero(frozen, api):
    make_whale(btc=150, first_seen_at=T0 + timedelta(minutes=10))
    rebuild_rollups()
    body = api.get("/api/v1/stats/?bucket=hour&days=1").json()
    assert len(body["volumes"]) == 24
    assert body["volumes"][-1]["start"] == "2026-03-01T12:00:00Z"
    assert body["volumes"][-1]["count"] == 1
    assert sum(b["count"] for b in body["volumes"]) == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("bucket=week", "bucket"),
        ("days=0", "days"),
        ("days=91", "days"),
        ("days=abc", "days"),
        ("window=7", "window"),
    ],
)
def test_bad_stats_parameters_are_400_naming_them(api, query, field):
    response = api.get(f"/api/v1/stats/?{query}")
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == [field]


def _predictions(whale, now, count=300):
    rng = random.Random(7)
    rows = []
    for _ in range(count):
        outcome = rng.choice(["confirmed", "confirmed", "confirmed", "replaced", "dropped", "open"])
        predicted = rng.choice([None, 1, 2, 3, 6, 8])  # 8: the catch-all "8 or more"
        actual = rng.choice([None, 1, 2, 4, 7, 8, 9]) if outcome == "confirmed" else None
        resolved = None if outcome == "open" else now - timedelta(hours=rng.uniform(0, 24 * 100))
        rows.append(
            Prediction(
                whale=whale,
                made_at=now - timedelta(days=100),
                band=rng.choice(["", "high", "medium", "low"]),
                outcome=outcome,
                predicted_blocks=predicted,
                actual_blocks=actual,
                resolved_at=resolved,
                scored=rng.random() < 0.8,  # later predictions of a chain are not scored
            )
        )
    Prediction.objects.bulk_create(rows)


def _assert_equal_to_the_domain(now):
    ours = accuracy_windows(now)
    reference = domain_stats.accuracy_windows(now.timestamp())
    assert list(ours) == list(reference) == ["1h", "24h", "7d", "90d"]
    for name, window in reference.items():
        assert ours[name]["seconds"] == window.seconds
        expected_overall = dataclasses.asdict(window.overall)
        expected_overall.pop("band")
        # exactly equal, floats included: the same integer sums divided the same way
        assert ours[name]["overall"] == expected_overall, name
        for band, figures in window.by_band.items():
            expected = dataclasses.asdict(figures)
            expected.pop("band")
            assert ours[name]["by_band"][band] == expected, (name, band)
    return ours


@pytest.mark.parametrize(
    "now",
    [
        NOW,
        T0,  # on an hour boundary: the windows' edges fall exactly on rollup hours
        T0 + timedelta(minutes=59, seconds=59, microseconds=999_999),
        T0 + timedelta(seconds=1),
    ],
)
def test_accuracy_from_the_rollup_equals_the_domain_rules(now):
    _predictions(make_whale(), now)
    # and some exactly on the edges of every window and of the current hour
    edges = [now - timedelta(seconds=s) for _, s in domain_stats.accuracy.WINDOWS]
    edges += [
        e + delta
        for e in edges
        for delta in (timedelta(microseconds=1), -timedelta(microseconds=1))
    ]
    edges += [now, now.replace(minute=0, second=0, microsecond=0)]
    whale = make_whale()
    Prediction.objects.bulk_create(
        Prediction(
            whale=whale,
            made_at=now - timedelta(days=100),
            band=["", "high", "medium", "low"][i % 4],
            outcome=["confirmed", "replaced", "dropped"][i % 3],
            predicted_blocks=2 if i % 3 == 0 else None,
            actual_blocks=1 + i % 5 if i % 3 == 0 else None,
            resolved_at=at,
        )
        for i, at in enumerate(edges)
    )
    rebuild_rollups()
    ours = _assert_equal_to_the_domain(now)
    assert ours["90d"]["overall"]["resolved"] > 50  # the sample is not trivially empty
    assert ours["1h"]["overall"]["resolved"] + ours["1h"]["overall"]["replaced"] > 0


def test_coverage_from_the_rollup_equals_the_rows_for_any_window():
    rng = random.Random(11)
    for _ in range(200):
        confirmed = rng.random() < 0.8
        make_whale(
            status=WhaleStatus.CONFIRMED if confirmed else WhaleStatus.PENDING,
            confirmed_at=NOW - timedelta(minutes=rng.uniform(-90, 3 * 24 * 60)),
            seen_in_mempool=rng.random() < 0.9,
        )
    make_whale(status=WhaleStatus.CONFIRMED, confirmed_at=None)  # block not known
    rebuild_rollups()
    for since in (
        NOW - timedelta(days=1),
        T0 - timedelta(days=2),  # on an hour boundary
        NOW - timedelta(hours=5, microseconds=1),
        NOW + timedelta(hours=3),
    ):
        assert domain_stats.rolled_up_coverage(since) == domain_stats.coverage(since), since
    assert domain_stats.rolled_up_coverage(NOW - timedelta(days=2))["mined"] > 50


def test_stats_payload_has_accuracy_coverage_and_source(frozen, api):
    make_whale(status=WhaleStatus.CONFIRMED, confirmed_at=NOW - timedelta(hours=1))
    make_whale(
        status=WhaleStatus.CONFIRMED,
        confirmed_at=NOW - timedelta(hours=2),
        seen_in_mempool=False,
    )
    rebuild_rollups()
    body = api.get("/api/v1/stats/?days=1").json()
    assert body["coverage"] == {"mined": 2, "seen_first": 1, "coverage": 0.5}
    assert set(body["accuracy"]) == {"1h", "24h", "7d", "90d"}
    assert set(body["accuracy"]["24h"]["by_band"]) == {"high", "medium", "low", "unscored"}
    assert set(body["accuracy"]["24h"]["by_band"]["high"]) == {
        "resolved",
        "hits",
        "hit_rate",
        "mean_abs_error",
        "coverage",
        "replaced",
        "dropped",
    }
    assert body["source"] == {"ok": False, "state": "absent"}


def test_only_staff_see_the_ingest_source(api, staff, client_for):
    health.write_ingest_heartbeat(
        {"source": "wss://user:pw@node.internal/ws", "connected": True, "memory_level": "normal"}
    )
    public = api.get("/api/v1/stats/").json()["source"]
    assert public["ok"] is True and public["state"] == "fresh" and public["connected"] is True
    assert "source" not in public
    staff_view = client_for(staff).get("/api/v1/stats/").json()["source"]
    assert staff_view["source"] == "wss://user:pw@node.internal/ws"


def test_old_buckets_are_read_from_the_rollup_not_cached(frozen, api):
    make_whale(btc=100, first_seen_at=T0 - timedelta(days=1))
    make_whale(btc=100, first_seen_at=NOW - timedelta(minutes=1))
    rebuild_rollups()
    first = api.get("/api/v1/stats/?days=2").json()["volumes"]
    assert [b["count"] for b in first] == [1, 1]
    # a late change to a long-settled day shows at once: nothing is cached
    make_whale(btc=100, first_seen_at=T0 - timedelta(days=1))
    make_whale(btc=100, first_seen_at=NOW - timedelta(minutes=1))
    rebuild_rollups()
    second = api.get("/api/v1/stats/?days=2").json()["volumes"]
    assert [b["count"] for b in second] == [2, 2]
    hourly = api.get("/api/v1/stats/?days=2&bucket=hour").json()["volumes"]
    assert sum(b["count"] for b in hourly) == 4


def test_beat_refreshes_the_accuracy_figures_requests_read(frozen, api, settings):
    from detection.tasks import refresh_api_accuracy

    assert settings.CELERY_BEAT_SCHEDULE["refresh-api-accuracy"] == {
        "task": "detection.refresh_api_accuracy",
        "schedule": 60.0,
    }
    whale = make_whale()
    refresh_api_accuracy()
    _predictions(whale, NOW, count=50)
    rebuild_rollups()
    cached = api.get("/api/v1/stats/").json()["accuracy"]
    assert cached["90d"]["overall"]["resolved"] == 0  # as of the last refresh
    refresh_api_accuracy()
    fresh = api.get("/api/v1/stats/").json()["accuracy"]
    assert fresh["90d"]["overall"] == {
        k: v for k, v in accuracy_windows(NOW)["90d"]["overall"].items()
    }
    assert fresh["90d"]["overall"]["resolved"] > 0
