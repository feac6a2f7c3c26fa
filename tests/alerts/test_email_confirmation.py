"""No alert e-mail goes to an address its owner has not confirmed (sign-up or e-mail change)."""

from __future__ import annotations

import pytest

from alerts.delivery import send_delivery
from alerts.fanout import fan_out
from alerts.models import Delivery, DeliveryStatus
from dashboard.models import Profile
from tests.alerts.conftest import ZERO_FEE_927, make_subscription, record

pytestmark = pytest.mark.django_db


def test_unconfirmed_address_gets_no_alert_delivery(alice, whales, smtp_server):
    Profile.objects.filter(user=alice).update(email_confirmed=False)
    make_subscription(alice)
    fan_out(record("seen", whales[ZERO_FEE_927]).pk)
    assert not Delivery.objects.filter(channel="email").exists()
    assert smtp_server.messages == []


def test_address_changed_after_fan_out_is_not_sent_to(alice, whales, smtp_server):
    make_subscription(alice)
    fan_out(record("seen", whales[ZERO_FEE_927]).pk)
    delivery = Delivery.objects.get(channel="email")
    # The owner changes the address (unconfirmed again) before the worker sends.
    Profile.objects.filter(user=alice).update(email_confirmed=False)
    send_delivery(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD
    assert "not confirmed" in delivery.last_error
    assert smtp_server.messages == []
