"""/api/v1/health/: anonymous callers share a cached pass/fail; staff always get a live check.

Every anonymous call used to run a Celery ping (about a second with no worker answering), so
anyone could keep web threads busy with it.
"""

from whaleproject import health


def counting_worker_checks(monkeypatch) -> list:
    calls = []
    real = health.check_workers

    def check_workers(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(health, "check_workers", check_workers)
    return calls


def test_anonymous_calls_within_seconds_run_the_checks_once(client, db, monkeypatch, settings):
    settings.WHALE_HEALTH_CACHE_SECONDS = 30
    calls = counting_worker_checks(monkeypatch)
    first = client.get("/api/v1/health/")
    second = client.get("/api/v1/health/")
    assert first.status_code == second.status_code == 503
    assert first.json() == second.json()
    assert all(set(check) == {"ok"} for check in second.json()["checks"].values())
    assert len(calls) == 1


def test_staff_get_live_detail_every_time(client, staff, monkeypatch, settings):
    settings.WHALE_HEALTH_CACHE_SECONDS = 30
    calls = counting_worker_checks(monkeypatch)
    client.get("/api/v1/health/")  # anonymous: fills the cache
    client.force_login(staff)
    response = client.get("/api/v1/health/")
    assert set(response.json()["checks"]["workers"]) > {"ok"}
    assert len(calls) == 2
