"""One throttling policy (whaleproject/throttling.py) on every way in.

Each test reproduces a gap found by the audit: the admin login, password reset, sign-up, e-mail
change and the alerts API's sending actions had no limit; full-width user names and the e-mail
address of an account were fresh buckets; Retry-After always named the per-username window.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from rest_framework.test import APIClient

from alerts.models import ChatEndpoint, Delivery, DeliveryStatus
from tests.alerts.conftest import make_endpoint

pytestmark = pytest.mark.django_db


def assert_throttled(response, window_seconds: int) -> None:
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= window_seconds


def test_admin_login_is_throttled(client, staff, settings):
    settings.WHALE_LOGIN_RATE_USERNAME = "3/m"
    for _ in range(3):
        response = client.post("/admin/login/", {"username": "charlie", "password": "nope"})
        assert response.status_code == 200
    response = client.post("/admin/login/", {"username": "charlie", "password": "nope"})
    assert_throttled(response, 60)


def test_full_width_user_name_shares_the_bucket(client, alice, settings):
    settings.WHALE_LOGIN_RATE_USERNAME = "3/m"
    for _ in range(3):
        client.post(reverse("login"), {"username": "alice", "password": "x"})
    response = client.post(reverse("login"), {"username": "ａｌｉｃｅ", "password": "x"})
    assert_throttled(response, 60)


def test_user_name_and_email_share_one_bucket_on_the_login_page(client, alice, settings):
    settings.WHALE_LOGIN_RATE_USERNAME = "2/m"
    client.post(reverse("login"), {"username": "alice", "password": "x"})
    client.post(reverse("login"), {"username": "ALICE@example.org", "password": "x"})
    response = client.post(reverse("login"), {"username": "alice@example.org", "password": "x"})
    assert_throttled(response, 60)


def test_user_name_and_email_share_one_bucket_on_the_token_endpoint(alice, settings):
    settings.WHALE_API_TOKEN_RATE_USERNAME = "2/m"
    anon = APIClient()
    for name in ("alice", "Alice@Example.org"):
        response = anon.post(
            "/api/v1/auth/token/", {"username": name, "password": "x"}, format="json"
        )
        assert response.status_code == 401
    response = anon.post(
        "/api/v1/auth/token/", {"username": "alice@example.org", "password": "x"}, format="json"
    )
    assert_throttled(response, 60)
    assert response.json()["error"]["code"] == "throttled"
    assert "2/m" in response.json()["error"]["message"]


def test_retry_after_states_the_limit_that_was_hit(client, db, settings):
    settings.WHALE_LOGIN_RATE_IP = "2/h"
    settings.WHALE_LOGIN_RATE_USERNAME = "100/m"
    # django-ratelimit's windows are fixed, each key's starting at its own offset in the period:
    # at a random moment the hour window may have less than a minute left. A fixed clock makes
    # the seconds left the same on every run.
    with time_machine.travel(datetime(2026, 3, 1, 12, 0, tzinfo=UTC), tick=False):
        for n in range(2):
            client.post(reverse("login"), {"username": f"guess{n}", "password": "x"})
        response = client.post(reverse("login"), {"username": "another", "password": "x"})
    assert response.status_code == 429
    # The per-IP window is an hour; the per-username one (a minute) was not hit.
    assert int(response["Retry-After"]) > 60
    assert b"2/h" in response.content


def test_password_reset_is_throttled_per_account(client, alice, settings):
    settings.WHALE_PASSWORD_RESET_RATE_ACCOUNT = "2/h"
    for address in ("alice@example.org", "ALICE@example.org"):
        assert client.post(reverse("password_reset"), {"email": address}).status_code == 302
    response = client.post(reverse("password_reset"), {"email": "alice@example.org"})
    assert_throttled(response, 3600)
    assert len(mail.outbox) == 2


def test_password_reset_is_throttled_per_ip(client, db, settings):
    settings.WHALE_PASSWORD_RESET_RATE_IP = "3/h"
    for n in range(3):
        client.post(reverse("password_reset"), {"email": f"nobody{n}@example.org"})
    response = client.post(reverse("password_reset"), {"email": "nobody9@example.org"})
    assert_throttled(response, 3600)


def test_sign_up_is_throttled_per_ip(client, db, settings):
    settings.WHALE_SIGNUP_RATE_IP = "2/h"
    for n in range(2):
        client.post(reverse("signup"), {"username": f"u{n}", "email": "bad"})
    response = client.post(reverse("signup"), {"username": "u9", "email": "bad"})
    assert_throttled(response, 3600)


def test_email_change_is_throttled_per_user(client, alice, settings):
    settings.WHALE_EMAIL_CHANGE_RATE = "2/h"
    client.force_login(alice)
    for n in range(2):
        client.post(reverse("account-settings"), {"email": f"a{n}@example.org", "time_zone": "UTC"})
    response = client.post(
        reverse("account-settings"), {"email": "a9@example.org", "time_zone": "UTC"}
    )
    assert_throttled(response, 3600)


def test_webhook_test_on_the_api_is_throttled_like_the_page(alice, settings):
    settings.WHALE_SEND_RATE = "3/m"
    endpoint = make_endpoint(alice, "https://10.0.0.1/hook")
    api = APIClient()
    api.force_authenticate(alice)
    for _ in range(3):
        assert api.post(f"/api/v1/webhooks/{endpoint.public_id}/test/").status_code == 201
    response = api.post(f"/api/v1/webhooks/{endpoint.public_id}/test/")
    assert_throttled(response, 60)
    assert response.json()["error"]["code"] == "throttled"


def test_redeliver_on_the_api_is_throttled(alice, settings):
    settings.WHALE_SEND_RATE = "2/m"
    endpoint = make_endpoint(alice, "https://10.0.0.1/hook")
    delivery = Delivery.objects.create(
        message_id="evt",
        owner=alice,
        channel="webhook",
        endpoint=endpoint,
        payload={"type": "whale.seen"},
        status=DeliveryStatus.DEAD,
        attempts=8,
    )
    api = APIClient()
    api.force_authenticate(alice)
    for _ in range(2):
        api.post(f"/api/v1/deliveries/{delivery.public_id}/redeliver/")
    response = api.post(f"/api/v1/deliveries/{delivery.public_id}/redeliver/")
    assert_throttled(response, 60)


def test_webhook_test_page_and_api_share_the_allowance(client, alice, settings):
    settings.WHALE_SEND_RATE = "2/m"
    endpoint = make_endpoint(alice, "https://10.0.0.1/hook")
    client.force_login(alice)
    page = reverse("alerts:webhook-test", kwargs={"public_id": endpoint.public_id})
    assert client.post(page).status_code == 302
    assert client.post(f"/api/v1/webhooks/{endpoint.public_id}/test/").status_code == 201
    assert_throttled(client.post(page), 60)


def test_chat_test_message_spends_the_same_send_allowance(client, alice, settings):
    # A private address: the SSRF guard refuses it, so each test send is recorded and nothing
    # leaves the machine.
    settings.WHALE_SEND_RATE = "3/m"
    endpoint = make_endpoint(alice, "https://10.0.0.1/hook")
    chat = ChatEndpoint.objects.create(owner=alice, service="discord", url="https://10.0.0.1/x")
    client.force_login(alice)
    assert client.post(f"/api/v1/webhooks/{endpoint.public_id}/test/").status_code == 201
    chat_page = reverse("alerts:chat-test", kwargs={"public_id": chat.public_id})
    assert client.post(chat_page).status_code == 302
    assert client.post(f"/api/v1/chats/{chat.public_id}/test/").status_code == 201
    assert_throttled(client.post(chat_page), 60)
    response = client.post(f"/api/v1/chats/{chat.public_id}/test/")
    assert_throttled(response, 60)
    assert response.json()["error"]["code"] == "throttled"
    assert Delivery.objects.filter(kind="test").count() == 3
