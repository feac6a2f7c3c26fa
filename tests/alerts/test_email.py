"""E-mail alerts to a real aiosmtpd server: content, headers, one-click unsubscribe."""

from __future__ import annotations

import re

import pytest

from alerts.delivery import send_delivery
from alerts.fanout import fan_out
from alerts.models import Delivery, DeliveryStatus, Subscription
from tests.alerts.conftest import ZERO_FEE_927, label_as_inflow, make_subscription, record

pytestmark = pytest.mark.django_db


def _parts(message):
    parts = {part.get_content_type(): part for part in message.walk()}
    text = parts["text/plain"].get_payload(decode=True).decode()
    html = parts["text/html"].get_payload(decode=True).decode()
    return text, html


@pytest.fixture
def alert_email(alice, whales, smtp_server):
    label_as_inflow(whales[ZERO_FEE_927])
    subscription = make_subscription(alice, name="Big inflows")
    event = record("seen", whales[ZERO_FEE_927])
    fan_out(event.pk)
    delivery = Delivery.objects.get()
    send_delivery(delivery.pk)
    [message] = smtp_server.wait_for(1)
    return message, subscription, delivery, event


def test_alert_email_content(alert_email, alice, smtp_server):
    message, subscription, delivery, event = alert_email
    assert message["To"] == alice.email
    assert smtp_server.envelopes[0].rcpt_tos == [alice.email]
    subject = str(message["Subject"]).strip()  # folding leaves a leading space
    assert subject.startswith("927.0 BTC Satoshi Fund → Binance (exchange inflow) · urgency ")
    assert re.search(r"urgency \d\.\d\d", subject)
    text, html = _parts(message)
    assert ZERO_FEE_927 in text and ZERO_FEE_927 in html
    assert "927.00000000 BTC" in text
    assert "Binance" in html and "Big inflows" in text
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.last_status_code == 250


def test_unsubscribe_headers_follow_rfc_8058(alert_email):
    message, *_ = alert_email
    assert str(message["List-Unsubscribe-Post"]).strip() == "List-Unsubscribe=One-Click"
    header = str(message["List-Unsubscribe"]).strip()
    assert re.fullmatch(r"<http://testserver/alerts/unsubscribe/[^>]+/>", header)
    text, html = _parts(message)
    assert header[1:-1] in text and header[1:-1] in html


def test_following_the_link_pauses_the_subscription(alert_email, client):
    message, subscription, *_ = alert_email
    url = str(message["List-Unsubscribe"]).strip()[1:-1].removeprefix("http://testserver")
    page = client.get(url)  # a link scanner's GET changes nothing
    assert page.status_code == 200 and b"Unsubscribe" in page.content
    assert Subscription.objects.get(pk=subscription.pk).active
    done = client.post(url, {"confirm": "1"})
    assert done.status_code == 200 and b"paused" in done.content
    assert not Subscription.objects.get(pk=subscription.pk).active


def test_one_click_post_from_a_mail_client(alert_email, client):
    message, subscription, *_ = alert_email
    url = str(message["List-Unsubscribe"]).strip()[1:-1].removeprefix("http://testserver")
    response = client.post(url, {"List-Unsubscribe": "One-Click"})  # no session, no CSRF token
    assert response.status_code == 200
    assert not Subscription.objects.get(pk=subscription.pk).active


def test_a_forged_token_does_nothing(alert_email, client):
    message, subscription, *_ = alert_email
    url = str(message["List-Unsubscribe"]).strip()[1:-1].removeprefix("http://testserver")
    forged = url[:-3] + ("A" if url[-3] != "A" else "B") + url[-2:]
    assert client.post(forged, {"List-Unsubscribe": "One-Click"}).status_code == 404
    assert Subscription.objects.get(pk=subscription.pk).active


def test_paused_subscription_sends_nothing_more(alice, whales, smtp_server):
    subscription = make_subscription(alice)
    event = record("seen", whales[ZERO_FEE_927])
    fan_out(event.pk)
    subscription.active = False
    subscription.save()
    delivery = Delivery.objects.get()
    send_delivery(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD and "paused" in delivery.last_error
    assert smtp_server.messages == []


def test_smtp_server_down_is_retried(alice, whales, settings):
    from tests.conftest import closed_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", closed_port()
    make_subscription(alice)
    fan_out(record("seen", whales[ZERO_FEE_927]).pk)
    delivery = Delivery.objects.get()
    send_delivery(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert "mail server unreachable" in delivery.last_error


def test_confirmed_subject_names_the_block(alice, whales, smtp_server):
    make_subscription(alice)
    tx = whales[ZERO_FEE_927]
    record("seen", tx)
    confirmed = record("confirmed", tx, block={"height": 277647, "hash": "00" * 32})
    fan_out(confirmed.pk)
    send_delivery(Delivery.objects.get(event=confirmed).pk)
    [message] = smtp_server.wait_for(1)
    assert str(message["Subject"]).strip().startswith("Confirmed in block 277,647: 927.0 BTC")
