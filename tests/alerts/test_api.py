"""The alerts REST API: CRUD, ownership (another user's object is 404), the one error shape."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from alerts.models import Delivery, DeliveryStatus, Subscription, WebhookEndpoint
from tests.alerts.conftest import make_endpoint, make_subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(alice, password):
    client = APIClient()
    token = client.post(
        "/api/v1/auth/token/", {"username": "alice", "password": password}, format="json"
    )
    if token.status_code == 200:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.json()['access']}")
    else:  # the token route belongs to another app; session auth is equally supported
        client.force_login(alice)
    return client


def test_anonymous_is_refused():
    response = APIClient().get("/api/v1/subscriptions/")
    assert response.status_code == 401
    assert set(response.json()["error"]) >= {"code", "message"}


def test_create_and_read_a_subscription(api, alice):
    endpoint = make_endpoint(alice, "https://hooks.example.org/a")
    response = api.post(
        "/api/v1/subscriptions/",
        {
            "name": "Big inflows",
            "min_btc": "250.5",
            "flows": ["exchange_inflow"],
            "entities": ["Binance", "Kraken"],
            "events": ["seen", "confirmed"],
            "min_urgency": 0.8,
            "email": False,
            "webhooks": [str(endpoint.public_id)],
            "quiet_start": "22:00",
            "quiet_end": "07:00",
            "max_per_hour": 5,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    subscription = Subscription.objects.get(public_id=body["id"])
    assert subscription.min_sats == 25_050_000_000
    assert subscription.entities == ["Binance", "Kraken"]
    assert subscription.kinds == ["seen", "confirmed"]
    assert body["min_btc"] == "250.50000000" and body["max_btc"] is None
    assert body["webhooks"] == [str(endpoint.public_id)]
    assert body["quiet_start"] == "22:00"
    assert api.get(f"/api/v1/subscriptions/{body['id']}/").json()["name"] == "Big inflows"
    patched = api.patch(f"/api/v1/subscriptions/{body['id']}/", {"active": False}, format="json")
    assert patched.status_code == 200 and patched.json()["active"] is False


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"min_btc": "99.99"}, "min_btc"),
        ({"min_btc": "200", "max_btc": "150"}, "max_btc"),
        ({"flows": ["sideways"]}, "flows"),
        ({"min_urgency": 1.5}, "min_urgency"),
        ({"events": []}, "events"),
        ({"quiet_start": "22:00"}, "quiet_end"),
        ({"email": False}, "non_field_errors"),
    ],
)
def test_invalid_subscription_gets_the_one_error_shape(api, data, field):
    response = api.post(
        "/api/v1/subscriptions/", {"name": "x", "min_btc": "100", **data}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"], error


def test_another_users_objects_are_404(api, bob):
    endpoint = make_endpoint(bob, "https://bob.example.org/hook")
    subscription = make_subscription(bob, endpoints=[endpoint])
    delivery = Delivery.objects.create(
        message_id="m", owner=bob, channel="webhook", endpoint=endpoint, payload={}
    )
    for url in (
        f"/api/v1/subscriptions/{subscription.public_id}/",
        f"/api/v1/webhooks/{endpoint.public_id}/",
        f"/api/v1/deliveries/{delivery.public_id}/",
    ):
        response = api.get(url)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    for url in (
        f"/api/v1/webhooks/{endpoint.public_id}/test/",
        f"/api/v1/webhooks/{endpoint.public_id}/rotate-secret/",
        f"/api/v1/deliveries/{delivery.public_id}/redeliver/",
    ):
        assert api.post(url).status_code == 404
    assert api.delete(f"/api/v1/subscriptions/{subscription.public_id}/").status_code == 404
    assert api.get("/api/v1/subscriptions/").json() == []
    assert api.get("/api/v1/webhooks/").json() == []
    assert api.get("/api/v1/deliveries/").json()["results"] == []
    # and bob's endpoint cannot be attached to alice's subscription
    response = api.post(
        "/api/v1/subscriptions/",
        {"name": "x", "min_btc": "100", "webhooks": [str(endpoint.public_id)]},
        format="json",
    )
    assert response.status_code == 400 and "webhooks" in response.json()["error"]["fields"]


def test_not_a_uuid_is_404(api):
    assert api.get("/api/v1/webhooks/12/").status_code == 404


def test_webhook_endpoints(api, alice, receiver, allow_loopback):
    response = api.post("/api/v1/webhooks/", {"url": receiver.url}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert "secret" not in api.get("/api/v1/webhooks/").json()[0]

    rotated = api.post(f"/api/v1/webhooks/{body['id']}/rotate-secret/").json()
    assert rotated["secret"] != body["secret"]

    test = api.post(f"/api/v1/webhooks/{body['id']}/test/")
    assert test.status_code == 201
    result = test.json()
    assert result["status"] == "delivered" and result["kind"] == "test"
    assert result["attempt_log"][0]["status_code"] == 200
    assert result["attempt_log"][0]["duration_ms"] is not None


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/",
        "https://user:pw@example.org/",
        "https://example.org:99999/",
        "http://169.254.169.254/",
        "http://2130706433/",
    ],
)
def test_bad_webhook_url_is_a_field_error(api, url, settings):
    settings.WHALE_OUTBOUND_ALLOW_LOOPBACK = False
    response = api.post("/api/v1/webhooks/", {"url": url}, format="json")
    assert response.status_code == 400
    assert "url" in response.json()["error"]["fields"]
    assert not WebhookEndpoint.objects.exists()


def test_deliveries_list_detail_and_redeliver(api, alice, django_capture_on_commit_callbacks):
    endpoint = make_endpoint(alice, "https://hooks.example.org/a")
    delivery = Delivery.objects.create(
        message_id="evt",
        owner=alice,
        channel="webhook",
        endpoint=endpoint,
        payload={"type": "whale.seen"},
        status=DeliveryStatus.DEAD,
        attempts=8,
    )
    listed = api.get("/api/v1/deliveries/").json()["results"]
    assert [d["id"] for d in listed] == [str(delivery.public_id)]
    assert listed[0]["webhook_id"] == "evt"
    detail = api.get(f"/api/v1/deliveries/{delivery.public_id}/").json()
    assert detail["attempt_log"] == [] and detail["payload"] == {"type": "whale.seen"}

    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(f"/api/v1/deliveries/{delivery.public_id}/redeliver/")
    assert response.status_code == 202 and response.json()["status"] == "pending"
    assert len(callbacks) == 1
    again = api.post(f"/api/v1/deliveries/{delivery.public_id}/redeliver/")
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    assert api.get("/api/v1/deliveries/?status=pending").json()["results"][0]["id"] == str(
        delivery.public_id
    )
