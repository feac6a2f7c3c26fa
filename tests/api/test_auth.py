"""Authentication: anonymous calls refused in the error shape, JWT lifetimes, rotation, blacklist."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from tests.api.conftest import error_of, make_whale

pytestmark = pytest.mark.django_db

PROTECTED_GETS = [
    "/api/v1/whales/",
    "/api/v1/whales/?format=csv",
    f"/api/v1/whales/{'ab' * 32}/",
    "/api/v1/stats/",
]


@pytest.mark.parametrize("url", PROTECTED_GETS)
def test_every_read_endpoint_refuses_anonymous_calls(anon, url):
    response = anon.get(url)
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert error_of(response)["code"] == "not_authenticated"


@pytest.mark.parametrize("url", PROTECTED_GETS)
def test_a_forged_token_is_refused_in_the_error_shape(anon, url):
    anon.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")
    response = anon.get(url)
    assert response.status_code == 401
    assert error_of(response)["code"] == "token_not_valid"


def test_health_answers_anonymous_callers(anon):
    response = anon.get("/api/v1/health/")
    assert response.status_code in (200, 503)
    assert "checks" in response.json()


def _obtain(client, username, password):
    return client.post(
        "/api/v1/auth/token/", {"username": username, "password": password}, format="json"
    )


def test_token_pair_for_good_credentials_works_on_the_api(anon, alice, password):
    response = _obtain(anon, "alice", password)
    assert response.status_code == 200
    tokens = response.json()
    assert set(tokens) == {"access", "refresh"}
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert anon.get("/api/v1/whales/").status_code == 200


def test_wrong_password_is_401_and_missing_field_is_400_naming_it(anon, alice):
    wrong = _obtain(anon, "alice", "nope")
    assert wrong.status_code == 401
    assert error_of(wrong)["code"] == "no_active_account"
    missing = anon.post("/api/v1/auth/token/", {"username": "alice"}, format="json")
    assert missing.status_code == 400
    assert "password" in error_of(missing)["fields"]


def test_access_token_lives_fifteen_minutes(anon, alice, password):
    assert settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"] == timedelta(minutes=15)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        access = _obtain(anon, "alice", password).json()["access"]
        anon.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
        clock.shift(timedelta(minutes=14, seconds=50))
        assert anon.get("/api/v1/whales/").status_code == 200
        clock.shift(timedelta(seconds=20))
        expired = anon.get("/api/v1/whales/")
    assert expired.status_code == 401
    assert error_of(expired)["code"] == "token_not_valid"


def test_refresh_token_lives_seven_days(anon, alice, password):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        refresh = _obtain(anon, "alice", password).json()["refresh"]
        clock.shift(timedelta(days=7, seconds=1))
        response = anon.post("/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json")
    assert response.status_code == 401
    assert error_of(response)["code"] == "token_not_valid"


def test_refresh_rotates_and_the_used_refresh_token_is_blacklisted(anon, alice, password):
    first = _obtain(anon, "alice", password).json()
    rotated = anon.post("/api/v1/auth/token/refresh/", {"refresh": first["refresh"]}, format="json")
    assert rotated.status_code == 200
    pair = rotated.json()
    assert set(pair) == {"access", "refresh"} and pair["refresh"] != first["refresh"]

    replay = anon.post("/api/v1/auth/token/refresh/", {"refresh": first["refresh"]}, format="json")
    assert replay.status_code == 401
    assert error_of(replay)["code"] == "token_not_valid"
    assert "blacklisted" in error_of(replay)["message"]
    # the new one still works, once
    again = anon.post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json")
    assert again.status_code == 200


def test_an_access_token_is_not_a_refresh_token(anon, alice, password):
    access = _obtain(anon, "alice", password).json()["access"]
    response = anon.post("/api/v1/auth/token/refresh/", {"refresh": access}, format="json")
    assert response.status_code == 401


def test_tokens_are_per_user(anon, alice, bob, password):
    """Blacklisting alice's refresh token leaves bob's alone, and each token names its owner."""
    from rest_framework_simplejwt.tokens import AccessToken

    alice_pair = _obtain(anon, "alice", password).json()
    bob_pair = _obtain(anon, "bob", password).json()
    assert AccessToken(alice_pair["access"])["user_id"] == str(alice.pk)
    assert AccessToken(bob_pair["access"])["user_id"] == str(bob.pk)
    anon.post("/api/v1/auth/token/refresh/", {"refresh": alice_pair["refresh"]}, format="json")
    bob_rotated = anon.post(
        "/api/v1/auth/token/refresh/", {"refresh": bob_pair["refresh"]}, format="json"
    )
    assert bob_rotated.status_code == 200
    assert OutstandingToken.objects.filter(user=alice).count() == 2
    assert BlacklistedToken.objects.filter(token__user=bob).count() == 1
    assert BlacklistedToken.objects.filter(token__user=alice).count() == 1


def test_session_login_also_reaches_the_api(client, alice, password):
    make_whale()
    assert client.login(username="alice", password=password)
    assert client.get("/api/v1/whales/").status_code == 200


def test_flush_expired_tokens_runs_daily_from_beat_and_drops_expired_ones(anon, alice, password):
    entry = settings.CELERY_BEAT_SCHEDULE["flush-expired-tokens"]
    assert entry == {"task": "detection.flush_expired_tokens", "schedule": 24 * 3600.0}
    from detection.tasks import flush_expired_tokens

    with time_machine.travel(timezone.now() - timedelta(days=8), tick=False):
        _obtain(anon, "alice", password)
    _obtain(anon, "alice", password)
    assert OutstandingToken.objects.count() == 2
    flush_expired_tokens()  # the task body, as the worker runs it
    assert OutstandingToken.objects.count() == 1
    call_command("flushexpiredtokens", verbosity=0)
    assert OutstandingToken.objects.count() == 1
