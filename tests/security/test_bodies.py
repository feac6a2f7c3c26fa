"""Request bodies: JSON nesting and size are limited before parsing (400 in the API's shape)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def post_raw(path: str, body: bytes):
    client = APIClient(raise_request_exception=False)
    return client.generic("POST", path, body, content_type="application/json")


def test_the_audit_body_is_a_400_not_a_crash():
    depth = 100_000  # 200 KB, as found by the audit
    response = post_raw("/api/v1/auth/token/", b"[" * depth + b"]" * depth)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_deeply_nested_json_under_the_size_limit_is_a_400():
    depth = 20_000
    response = post_raw("/api/v1/auth/token/", b"[" * depth + b"]" * depth)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "parse_error"
    assert "nested too deeply" in error["message"]


def test_nesting_inside_strings_does_not_count():
    body = b'{"username": "' + b"[" * 500 + b'", "password": "x"}'
    assert post_raw("/api/v1/auth/token/", body).status_code == 401


def test_oversized_json_body_is_a_400(settings):
    settings.WHALE_API_MAX_JSON_BYTES = 1000
    body = b'{"username": "' + b"a" * 2000 + b'", "password": "x"}'
    response = post_raw("/api/v1/auth/token/", body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


# --- names that reach mail headers ------------------------------------------------------------

SUBSCRIPTION = {"min_btc": "150", "email": True}


@pytest.mark.parametrize("name", ["ok\r\nBcc: victim@example.org", "line\nbreak", "cr\rhere"])
def test_api_refuses_line_breaks_in_subscription_names(alice, name):
    api = APIClient()
    api.force_authenticate(alice)
    response = api.post("/api/v1/subscriptions/", {**SUBSCRIPTION, "name": name}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["error"]["fields"]


def test_form_refuses_line_breaks_in_subscription_names(client, alice):
    client.force_login(alice)
    response = client.post(
        "/alerts/subscriptions/new/",
        {"name": "a\r\nb", "min_btc": "150", "kinds": ["seen"], "email": "on"},
    )
    assert response.status_code == 200
    assert "line break" in response.content.decode()
    assert not alice.alert_subscriptions.exists()


def test_digest_subject_of_an_old_row_with_a_line_break_is_one_line():
    from alerts.payloads import subject

    payload = {"type": "whale.digest", "data": {"count": 2, "subscription": {"name": "a\r\nb"}}}
    assert "\r" not in subject(payload) and "\n" not in subject(payload)


# --- webhook URLs ---------------------------------------------------------------------------


def save_endpoint(alice, url: str):
    api = APIClient()
    api.force_authenticate(alice)
    return api.post("/api/v1/webhooks/", {"url": url}, format="json")


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.org/a b",
        "https://hooks.example.org/a\tb",
        "https://hooks.exa mple.org/",
    ],
)
def test_urls_with_whitespace_are_refused_when_saved(alice, url):
    response = save_endpoint(alice, url)
    assert response.status_code == 400
    assert "url" in response.json()["error"]["fields"]


def test_non_ascii_urls_are_saved_idna_and_percent_encoded(alice):
    response = save_endpoint(alice, "https://bücher.example/pfad/ä?q=ü")
    assert response.status_code == 201, response.json()
    assert response.json()["url"] == "https://xn--bcher-kva.example/pfad/%C3%A4?q=%C3%BC"


def test_bad_idna_host_is_refused(alice):
    assert save_endpoint(alice, "https://xn--a.example/hook").status_code == 400


# --- guard errors shown to users ----------------------------------------------------------


def test_blocked_destination_error_names_no_address(alice):
    from tests.alerts.conftest import make_endpoint

    endpoint = make_endpoint(alice, "https://10.0.0.1/hook")
    api = APIClient()
    api.force_authenticate(alice)
    response = api.post(f"/api/v1/webhooks/{endpoint.public_id}/test/")
    assert response.status_code == 201
    error = response.json()["last_error"]
    assert "not allowed" in error
    assert "10.0.0.1" not in response.content.decode()


def test_connection_errors_do_not_tell_refused_from_timeout(alice, settings):
    from tests.alerts.conftest import make_endpoint
    from tests.conftest import closed_port

    settings.WHALE_OUTBOUND_ALLOW_LOOPBACK = True
    endpoint = make_endpoint(alice, f"http://127.0.0.1:{closed_port()}/hook")
    api = APIClient()
    api.force_authenticate(alice)
    response = api.post(f"/api/v1/webhooks/{endpoint.public_id}/test/")
    error = response.json()["last_error"]
    assert error == "could not connect"
    body = response.content.decode().lower()
    assert "refused" not in body and "127.0.0.1" not in body
