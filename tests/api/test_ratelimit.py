"""django-ratelimit on the Redis cache: 429, Retry-After and the JSON error body."""

from __future__ import annotations

import pytest

from tests.api.conftest import error_of, make_whale

pytestmark = pytest.mark.django_db


def assert_throttled(response, window_seconds: int):
    assert response.status_code == 429
    assert error_of(response)["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= window_seconds


def test_reads_are_limited_per_user(settings, alice, bob, client_for):
    settings.WHALE_API_READ_RATE = "3/m"
    make_whale()
    alice_api, bob_api = client_for(alice), client_for(bob)
    for url in ("/api/v1/whales/", "/api/v1/stats/", "/api/v1/whales/"):
        assert alice_api.get(url).status_code == 200
    assert_throttled(alice_api.get("/api/v1/stats/"), 60)
    assert bob_api.get("/api/v1/whales/").status_code == 200  # bob has his own allowance


def test_exports_have_their_own_lower_limit(settings, api):
    settings.WHALE_API_EXPORT_RATE = "1/h"
    assert api.get("/api/v1/whales/?format=csv").status_code == 200
    refused = api.get("/api/v1/whales/?format=csv")
    assert_throttled(refused, 3600)
    assert refused["Content-Type"].startswith("application/json")
    assert api.get("/api/v1/whales/").status_code == 200


def _obtain(client, username, password, ip="203.0.113.7"):
    return client.post(
        "/api/v1/auth/token/",
        {"username": username, "password": password},
        format="json",
        REMOTE_ADDR=ip,
    )


def test_token_requests_are_limited_per_username(settings, anon, alice, bob, password):
    settings.WHALE_API_TOKEN_RATE_USERNAME = "2/m"
    assert _obtain(anon, "alice", "wrong").status_code == 401
    assert _obtain(anon, "ALICE ", "wrong", ip="198.51.100.1").status_code == 401
    # the right password does not help once the username's allowance is spent, from any IP
    assert_throttled(_obtain(anon, "alice", password, ip="198.51.100.2"), 60)
    assert _obtain(anon, "bob", password).status_code == 200


def test_token_requests_are_limited_per_ip(settings, anon, alice, password):
    settings.WHALE_API_TOKEN_RATE_IP = "3/m"
    for name in ("a", "b", "c"):
        assert _obtain(anon, name, "x").status_code == 401
    assert_throttled(_obtain(anon, "alice", password), 60)
    assert _obtain(anon, "alice", password, ip="192.0.2.55").status_code == 200


def test_refresh_is_limited_per_ip_and_per_token_owner(settings, anon, alice, password):
    settings.WHALE_API_TOKEN_RATE_USERNAME = "2/m"
    refresh = _obtain(anon, "alice", password).json()["refresh"]
    for ip in ("192.0.2.1", "192.0.2.2"):
        response = anon.post(
            "/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json", REMOTE_ADDR=ip
        )
        assert response.status_code == 200
        refresh = response.json()["refresh"]
    response = anon.post(
        "/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json", REMOTE_ADDR="192.0.2.3"
    )
    assert_throttled(response, 60)


def test_anonymous_calls_do_not_spend_anyones_allowance(settings, anon, api):
    settings.WHALE_API_READ_RATE = "1/m"
    for _ in range(3):
        assert anon.get("/api/v1/whales/").status_code == 401
    assert api.get("/api/v1/whales/").status_code == 200


def test_limits_can_be_switched_off(settings, api):
    settings.WHALE_API_READ_RATE = "1/m"
    settings.RATELIMIT_ENABLE = False
    for _ in range(3):
        assert api.get("/api/v1/whales/").status_code == 200
