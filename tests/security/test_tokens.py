"""JWTs end when they should: a password change, a deactivation or POST /api/v1/auth/logout/
revokes the user's refresh tokens and makes the access tokens issued before it fail.

The audit found old access and refresh tokens still working after a password change, and no
way to log out of the API.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.security.support import run_django

pytestmark = pytest.mark.django_db

WHALES = "/api/v1/whales/"


def obtain(username: str, password: str) -> dict:
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": username, "password": password}, format="json"
    )
    assert response.status_code == 200, response.json()
    return response.json()


def with_access(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def refresh(token: str):
    return APIClient().post("/api/v1/auth/token/refresh/", {"refresh": token}, format="json")


def assert_revoked(tokens: dict) -> None:
    response = with_access(tokens["access"]).get(WHALES)
    assert response.status_code == 401
    assert refresh(tokens["refresh"]).status_code == 401


def test_tokens_work_before_anything_happens(alice, password):
    tokens = obtain("alice", password)
    assert with_access(tokens["access"]).get(WHALES).status_code == 200
    assert refresh(tokens["refresh"]).status_code == 200


def test_password_change_revokes_tokens(alice, password):
    tokens = obtain("alice", password)
    rotated = refresh(tokens["refresh"]).json()  # a rotated chain is revoked as well
    alice.set_password("a brand new password 99")
    alice.save()
    assert_revoked(tokens | {"refresh": rotated["refresh"]})
    assert with_access(rotated["access"]).get(WHALES).status_code == 401
    fresh = obtain("alice", "a brand new password 99")
    assert with_access(fresh["access"]).get(WHALES).status_code == 200


def test_password_change_page_revokes_tokens(client, alice, password):
    tokens = obtain("alice", password)
    client.force_login(alice)
    new = "another long passphrase 77"
    response = client.post(
        "/accounts/password/change/",
        {"old_password": password, "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 302
    assert_revoked(tokens)


def test_deactivation_revokes_tokens(alice, password):
    tokens = obtain("alice", password)
    alice.is_active = False
    alice.save()
    assert_revoked(tokens)


def test_logout_revokes_every_token_of_the_user(alice, password):
    first = obtain("alice", password)
    second = obtain("alice", password)
    response = with_access(first["access"]).post("/api/v1/auth/logout/")
    assert response.status_code == 204
    assert_revoked(first)
    assert_revoked(second)
    again = obtain("alice", password)
    assert with_access(again["access"]).get(WHALES).status_code == 200


def test_logout_needs_a_caller(db):
    assert APIClient().post("/api/v1/auth/logout/").status_code == 401


def test_other_users_tokens_survive(alice, bob, password):
    bobs = obtain("bob", password)
    alice.set_password("a brand new password 99")
    alice.save()
    assert with_access(bobs["access"]).get(WHALES).status_code == 200


def test_jwts_are_signed_with_their_own_key():
    assert settings.SIMPLE_JWT["SIGNING_KEY"] != settings.SECRET_KEY
    assert len(settings.SIMPLE_JWT["SIGNING_KEY"]) >= 32


def test_jwt_signing_key_comes_from_the_environment():
    code = "from django.conf import settings as s; print(s.SIMPLE_JWT['SIGNING_KEY'])"
    result = run_django(code, JWT_SIGNING_KEY="k" * 40)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "k" * 40
    short = run_django("", JWT_SIGNING_KEY="short")
    assert short.returncode != 0 and "JWT_SIGNING_KEY" in short.stderr
