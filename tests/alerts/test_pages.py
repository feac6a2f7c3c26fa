"""The alerts pages: forms with labels, create/edit/pause/delete, endpoints, the delivery log."""

from __future__ import annotations

import re

import pytest

from alerts.models import Delivery, DeliveryAttempt, DeliveryStatus, Subscription, WebhookEndpoint
from tests.alerts.conftest import make_endpoint, make_subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def assert_every_input_is_labelled(html: str) -> None:
    ids = set(re.findall(r'<input[^>]*\bid="([^"]+)"', html)) | set(
        re.findall(r'<select[^>]*\bid="([^"]+)"', html)
    )
    labelled = set(re.findall(r'<label[^>]*\bfor="([^"]+)"', html))
    assert ids - labelled == set()


def test_pages_need_login(client):
    response = client.get("/alerts/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_create_edit_pause_delete_a_subscription(alice_client, alice):
    page = alice_client.get("/alerts/subscriptions/new/")
    assert page.status_code == 200
    html = page.content.decode()
    assert '<html lang="en">' in html and "Minimum amount (BTC)" in html
    assert_every_input_is_labelled(html)

    response = alice_client.post(
        "/alerts/subscriptions/new/",
        {
            "name": "Inflows",
            "active": "on",
            "min_btc": "500",
            "flows": ["exchange_inflow"],
            "entities": "Binance, Kraken",
            "kinds": ["seen", "confirmed"],
            "email": "on",
            "quiet_start": "22:00",
            "quiet_end": "07:00",
        },
    )
    assert response.status_code == 302
    subscription = Subscription.objects.get(owner=alice)
    assert subscription.min_sats == 50_000_000_000
    assert subscription.entities == ["Binance", "Kraken"]
    assert subscription.kinds == ["seen", "confirmed"]
    assert "Inflows" in alice_client.get("/alerts/").content.decode()

    edit = f"/alerts/subscriptions/{subscription.public_id}/edit/"
    assert 'value="Binance, Kraken"' in alice_client.get(edit).content.decode()
    alice_client.post(
        edit,
        {"name": "Renamed", "active": "on", "min_btc": "600", "kinds": ["seen"], "email": "on"},
    )
    subscription.refresh_from_db()
    assert (subscription.name, subscription.min_sats) == ("Renamed", 60_000_000_000)

    alice_client.post(f"/alerts/subscriptions/{subscription.public_id}/toggle/")
    subscription.refresh_from_db()
    assert not subscription.active

    delete = f"/alerts/subscriptions/{subscription.public_id}/delete/"
    assert alice_client.get(delete).status_code == 200
    alice_client.post(delete)
    assert not Subscription.objects.exists()


def test_subscription_errors_are_shown_on_the_fields(alice_client, settings):
    response = alice_client.post(
        "/alerts/subscriptions/new/",
        {"name": "Low", "min_btc": "5", "kinds": [], "quiet_start": "22:00"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'role="alert"' in html
    assert "below this portal&#x27;s floor of 100 BTC" in html, re.findall(
        r"role=.alert.>([^<]*)", html
    )
    assert "Choose at least one channel: e-mail, a webhook or a chat." in html
    assert not Subscription.objects.exists()


def test_webhook_endpoint_pages(alice_client, alice, receiver, allow_loopback):
    assert_every_input_is_labelled(alice_client.get("/alerts/webhooks/new/").content.decode())
    refused = alice_client.post("/alerts/webhooks/new/", {"url": "http://10.0.0.7/hook"})
    assert refused.status_code == 200
    assert "webhooks go to public addresses only" in refused.content.decode()

    response = alice_client.post("/alerts/webhooks/new/", {"url": receiver.url})
    endpoint = WebhookEndpoint.objects.get(owner=alice)
    assert response["Location"] == f"/alerts/webhooks/{endpoint.public_id}/"
    page = alice_client.get(response["Location"]).content.decode()
    assert endpoint.secret in page
    assert_every_input_is_labelled(page)

    old = endpoint.secret
    alice_client.post(f"/alerts/webhooks/{endpoint.public_id}/rotate/")
    endpoint.refresh_from_db()
    assert endpoint.secret != old

    tested = alice_client.post(f"/alerts/webhooks/{endpoint.public_id}/test/", follow=True)
    assert "Test event delivered: HTTP 200" in tested.content.decode()
    assert receiver.wait_for(1)[0].headers["webhook-id"].startswith("test_")


def test_delivery_log_shows_attempts_and_redeliver(alice_client, alice):
    endpoint = make_endpoint(alice, "https://hooks.example.org/a")
    delivery = Delivery.objects.create(
        message_id="evt-1",
        owner=alice,
        channel="webhook",
        endpoint=endpoint,
        payload={"type": "whale.seen"},
        status=DeliveryStatus.DEAD,
        attempts=1,
        last_status_code=503,
        last_duration_ms=42,
    )
    DeliveryAttempt.objects.create(
        delivery=delivery, number=1, outcome="failed", status_code=503, duration_ms=42
    )
    log = alice_client.get("/alerts/deliveries/").content.decode()
    assert "503" in log and "42 ms" in log
    detail = alice_client.get(f"/alerts/deliveries/{delivery.public_id}/").content.decode()
    assert "evt-1" in detail and "Redeliver" in detail and "42 ms" in detail
    alice_client.post(f"/alerts/deliveries/{delivery.public_id}/redeliver/")
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING


def test_another_users_objects_are_404_on_pages(alice_client, bob):
    endpoint = make_endpoint(bob, "https://bob.example.org/hook")
    subscription = make_subscription(bob, endpoints=[endpoint])
    delivery = Delivery.objects.create(
        message_id="m", owner=bob, channel="webhook", endpoint=endpoint, payload={}
    )
    for url in (
        f"/alerts/subscriptions/{subscription.public_id}/edit/",
        f"/alerts/subscriptions/{subscription.public_id}/delete/",
        f"/alerts/webhooks/{endpoint.public_id}/",
        f"/alerts/deliveries/{delivery.public_id}/",
    ):
        assert alice_client.get(url).status_code == 404
    for url in (
        f"/alerts/subscriptions/{subscription.public_id}/toggle/",
        f"/alerts/webhooks/{endpoint.public_id}/rotate/",
        f"/alerts/webhooks/{endpoint.public_id}/test/",
        f"/alerts/deliveries/{delivery.public_id}/redeliver/",
    ):
        assert alice_client.post(url).status_code == 404
    index = alice_client.get("/alerts/").content.decode()
    assert "bob.example.org" not in index and subscription.name not in index
    # bob's endpoint is not offered on alice's form
    assert (
        f'value="{endpoint.pk}"'
        not in alice_client.get("/alerts/subscriptions/new/").content.decode()
    )
