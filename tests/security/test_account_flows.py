"""Accounts: sign-up confirms the address by a signed link before any alert goes to it; sign-up
and password reset answer the same whether or not the address is known; changing the e-mail
address asks for the current password, and both it and a password change tell the old address.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from dashboard.models import Profile

User = get_user_model()
pytestmark = pytest.mark.django_db
PASSPHRASE = "a sturdy passphrase 91"


def sign_up(client, username: str, email: str):
    return client.post(
        reverse("signup"),
        {"username": username, "email": email, "password1": PASSPHRASE, "password2": PASSPHRASE},
    )


def link_in(message) -> str:
    return re.search(r"https?://\S+", message.body).group(0).removeprefix("http://testserver")


def test_sign_up_sends_a_signed_link_that_confirms_the_address(client):
    response = sign_up(client, "dave", "dave@example.org")
    assert response.status_code == 302
    dave = User.objects.get(username="dave")
    assert Profile.objects.get(user=dave).email_confirmed is False
    [message] = mail.outbox
    assert message.to == ["dave@example.org"]
    link = link_in(message)
    assert "/accounts/confirm/" in link
    forged = link[:-3] + ("A" if link[-3] != "A" else "B") + link[-2:]
    assert client.get(forged).status_code == 400
    assert Profile.objects.get(user=dave).email_confirmed is False
    assert client.get(link).status_code in (200, 302)
    assert Profile.objects.get(user=dave).email_confirmed is True
    assert client.login(username="dave", password=PASSPHRASE)


def test_sign_up_answers_the_same_for_a_registered_address(client, alice):
    fresh = sign_up(client, "dave", "dave@example.org")
    taken = sign_up(client, "erin", "ALICE@example.org")
    assert (taken.status_code, taken["Location"]) == (fresh.status_code, fresh["Location"])
    assert not User.objects.filter(username="erin").exists()
    # The owner of the address hears about it; nothing is sent anywhere else.
    assert [m.to for m in mail.outbox] == [["dave@example.org"], ["alice@example.org"]]


def test_password_reset_answers_the_same_for_an_unknown_address(client, alice):
    known = client.post(reverse("password_reset"), {"email": "alice@example.org"})
    unknown = client.post(reverse("password_reset"), {"email": "nobody@example.org"})
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])


def test_changing_the_email_needs_the_current_password(client, alice, password):
    client.force_login(alice)
    page = reverse("account-settings")
    response = client.post(page, {"email": "new@example.org", "time_zone": "UTC"})
    assert response.status_code == 200
    response = client.post(
        page, {"email": "new@example.org", "time_zone": "UTC", "current_password": "wrong"}
    )
    assert response.status_code == 200
    alice.refresh_from_db()
    assert alice.email == "alice@example.org"
    assert mail.outbox == []


def test_email_change_tells_the_old_address_and_confirms_the_new(client, alice, password):
    client.force_login(alice)
    response = client.post(
        reverse("account-settings"),
        {"email": "new@example.org", "time_zone": "UTC", "current_password": password},
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.email == "new@example.org"
    assert Profile.objects.get(user=alice).email_confirmed is False
    recipients = sorted(m.to[0] for m in mail.outbox)
    assert recipients == ["alice@example.org", "new@example.org"]


def test_time_zone_alone_needs_no_password(client, alice):
    client.force_login(alice)
    response = client.post(
        reverse("account-settings"), {"email": "alice@example.org", "time_zone": "Europe/Paris"}
    )
    assert response.status_code == 302
    assert mail.outbox == []


def test_password_change_tells_the_address(client, alice, password):
    client.force_login(alice)
    new = "another long passphrase 77"
    client.post(
        reverse("password_change"),
        {"old_password": password, "new_password1": new, "new_password2": new},
    )
    [message] = mail.outbox
    assert message.to == ["alice@example.org"]
    assert "password" in message.subject.lower()
