"""The source-health banner (every page) and the staff-only accuracy banner."""

import json
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.cache import cache

from dashboard.source_health import (
    CONNECTED,
    DEGRADED,
    UNAVAILABLE,
    UNAVAILABLE_AFTER_SECONDS,
    banner_payload,
    source_health,
)
from detection.stats import ALARM_CACHE_KEY
from whaleproject.health import INGEST_HEARTBEAT_KEY, write_ingest_heartbeat
from whaleproject.redis_client import get_redis, key

NOW = 1_800_000_000.0


def heartbeat(**fields):
    return {"source": "wss://mempool.space/api/v1/ws", "written_at": NOW - 2, **fields}


# --- the rules, from a heartbeat dict ----------------------------------------------------------


@pytest.mark.django_db
def test_the_pushed_banner_is_judged_and_worded_by_the_server():
    # Reconnecting for a minute: amber now, red when five minutes down, with the page's words.
    payload = banner_payload(heartbeat(connected=False, disconnected_since=NOW - 60), NOW)
    assert payload["state"] == DEGRADED
    assert "reconnecting since" in payload["html"]
    assert 'data-format="time"' in payload["html"], "the browser shows it in the viewer's zone"
    [step] = payload["then"]
    assert step["state"] == UNAVAILABLE
    assert step["at"] == pytest.approx(NOW - 60 + UNAVAILABLE_AFTER_SECONDS, abs=0.01)
    assert step["at"] > NOW - 60 + UNAVAILABLE_AFTER_SECONDS, "five minutes exactly is amber"
    assert "has been down since" in step["html"]
    # Each step is what source_health says at that moment: one rule, no copy in the browser.
    dropped = heartbeat(connected=False, disconnected_since=NOW - 60)
    assert source_health(dropped, step["at"]).state == UNAVAILABLE
    assert source_health(dropped, step["at"] - 0.01).state == DEGRADED


@pytest.mark.django_db
def test_no_heartbeat_is_unavailable_with_nothing_to_follow():
    payload = banner_payload(None, NOW)
    assert (payload["state"], payload["then"]) == (UNAVAILABLE, [])
    assert "no heartbeat from the ingest process" in payload["html"]


def test_the_banner_script_holds_no_health_rule():
    script = (settings.BASE_DIR / "static" / "js" / "banner.js").read_text()
    assert "staleAfter" not in script and "unavailableAfter" not in script


def test_connected_and_fresh_is_connected():
    health = source_health(heartbeat(connected=True, memory_level="ok", rss_mb=212.4), now=NOW)
    assert health.state == CONNECTED
    assert health.down_since is None
    assert (health.memory_level, health.rss_mb) == ("ok", 212.4)


def test_reconnecting_for_a_minute_is_degraded_since_the_drop():
    health = source_health(heartbeat(connected=False, disconnected_since=NOW - 60), now=NOW)
    assert health.state == DEGRADED
    assert health.down_since == datetime.fromtimestamp(NOW - 60, tz=UTC)
    assert health.headline == "Mempool source reconnecting"


def test_down_for_more_than_five_minutes_is_unavailable():
    down = NOW - UNAVAILABLE_AFTER_SECONDS - 1
    health = source_health(heartbeat(connected=False, disconnected_since=down), now=NOW)
    assert health.state == UNAVAILABLE
    assert health.headline == "Mempool predictions unavailable"


def test_exactly_five_minutes_is_still_degraded():
    down = NOW - UNAVAILABLE_AFTER_SECONDS
    assert source_health(heartbeat(connected=False, disconnected_since=down), now=NOW).state == (
        DEGRADED
    )


def test_silent_ingest_counts_as_down_from_its_last_heartbeat():
    stale = heartbeat(connected=True, written_at=NOW - 60)
    health = source_health(stale, now=NOW)
    assert (health.state, health.silent) == (DEGRADED, True)
    assert health.down_since == datetime.fromtimestamp(NOW - 60, tz=UTC)
    long_gone = heartbeat(connected=True, written_at=NOW - 400)
    assert source_health(long_gone, now=NOW).state == UNAVAILABLE


def test_no_heartbeat_at_all_is_unavailable():
    assert source_health(None, now=NOW).state == UNAVAILABLE
    assert source_health({}, now=NOW).state == UNAVAILABLE


def test_disconnected_without_a_time_is_degraded_now():
    health = source_health(heartbeat(connected=False), now=NOW)
    assert health.state == DEGRADED


@pytest.mark.parametrize(
    "junk", [{"connected": "yes"}, {"written_at": "soon"}, {"disconnected_since": float("nan")}]
)
def test_junk_fields_never_raise(junk):
    assert source_health(heartbeat(**junk), now=NOW).state in (CONNECTED, DEGRADED, UNAVAILABLE)


# --- as rendered on every page, from the heartbeat in Redis ------------------------------------


def store_heartbeat(payload: dict) -> None:
    """Like the ingest writes it, but with the given written_at (write_ingest_heartbeat sets now)."""
    get_redis().set(key(*INGEST_HEARTBEAT_KEY), json.dumps(payload), ex=600)


def banner(response) -> str:
    html = response.content.decode()
    return html.split('id="source-banner"', 1)[1].split("</div>", 1)[0]


@pytest.fixture(autouse=True)
def no_heartbeat():
    get_redis().delete(key(*INGEST_HEARTBEAT_KEY))
    yield
    get_redis().delete(key(*INGEST_HEARTBEAT_KEY))


@pytest.mark.django_db
def test_banner_connected(alice_client):
    write_ingest_heartbeat({"source": "replay:demo", "connected": True, "memory_level": "ok"})
    text = banner(alice_client.get("/"))
    assert 'data-state="connected"' in text
    assert "mempool source connected" in text
    assert "Ingest memory" not in text, "memory pressure is for staff only"


@pytest.mark.django_db
def test_banner_degraded_says_since_when(alice_client, alice):
    alice.profile.time_zone = "Europe/Paris"
    alice.profile.save()
    down = time.time() - 90
    store_heartbeat(heartbeat(connected=False, disconnected_since=down, written_at=time.time()))
    text = banner(alice_client.get("/stats/"))
    assert 'data-state="degraded"' in text
    local = datetime.fromtimestamp(down, tz=ZoneInfo("Europe/Paris"))
    assert "reconnecting since" in text
    assert f">{local:%H:%M:%S}</time>" in text, "in the user's time zone"


@pytest.mark.django_db
def test_banner_unavailable_after_five_minutes(alice_client, alice):
    down = time.time() - UNAVAILABLE_AFTER_SECONDS - 30
    store_heartbeat(heartbeat(connected=False, disconnected_since=down, written_at=time.time()))
    response = alice_client.get("/")
    text = banner(response)
    assert 'data-state="unavailable"' in text
    assert "Mempool predictions unavailable" in text


@pytest.mark.django_db
def test_banner_unavailable_without_any_heartbeat(alice_client, alice):
    text = banner(alice_client.get("/"))
    assert 'data-state="unavailable"' in text
    assert "no heartbeat from the ingest process" in text


@pytest.mark.django_db
def test_banner_on_every_logged_in_page(alice_client, alice):
    write_ingest_heartbeat({"connected": True})
    for path in ("/", "/stats/", "/accounts/settings/"):
        assert 'id="source-banner"' in alice_client.get(path).content.decode(), path


@pytest.mark.django_db
def test_no_banner_for_anonymous_visitors(client):
    assert 'id="source-banner"' not in client.get("/accounts/login/").content.decode()


@pytest.mark.django_db
def test_staff_see_memory_pressure(staff_client):
    write_ingest_heartbeat({"connected": True, "memory_level": "warning", "rss_mb": 431.7})
    text = banner(staff_client.get("/"))
    assert "Ingest memory" in text
    assert 'class="memory-warning">warning</span> (432 MB)' in text


@pytest.mark.django_db
def test_low_accuracy_banner_is_for_staff_only(staff_client, client, alice):
    cache.set(ALARM_CACHE_KEY, {"hit_rate": 0.55, "resolved": 40, "since": time.time()})
    html = " ".join(staff_client.get("/").content.decode().split())
    assert "Prediction accuracy is low" in html
    assert "only 55 % of 40 resolved predictions were hits" in html
    client.force_login(alice)
    assert "Prediction accuracy is low" not in client.get("/").content.decode()


@pytest.mark.django_db
def test_no_accuracy_banner_when_accuracy_is_fine(staff_client):
    cache.delete(ALARM_CACHE_KEY)
    assert "Prediction accuracy is low" not in staff_client.get("/").content.decode()


@pytest.mark.django_db
def test_redis_outage_shows_unavailable_not_a_500(alice_client, monkeypatch):
    def broken():
        raise ConnectionError("redis down")

    monkeypatch.setattr("whaleproject.health.read_ingest_heartbeat", broken)
    response = alice_client.get("/")
    assert response.status_code == 200
    assert 'data-state="unavailable"' in banner(response)
