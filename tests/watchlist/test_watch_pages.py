"""The Watching page, the whale page's own panel, and the admin: each user sees only theirs."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from alerts.fanout import fan_out
from alerts.watchlists import PrivateLabel, WatchlistEntry
from detection.models import AddressLabel
from tests.watchlist.conftest import SMALL_RECIPIENT, SMALL_SENDER, record, watch
from tests.watchlist.test_xpub import BIP84_ZPRV

pytestmark = pytest.mark.django_db


def page(client, user, path="/alerts/watching/"):
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


def test_watching_page_shows_only_the_owners_entries_labels_and_hits(client, alice, bob, small_tx):
    watch(alice, SMALL_RECIPIENT, note="alice cold storage")
    PrivateLabel.objects.create(owner=alice, address=SMALL_SENDER, name="alice names the dice")
    fan_out(record("seen", small_tx).pk)
    mine = page(client, alice)
    assert "alice cold storage" in mine and "alice names the dice" in mine
    assert small_tx.txid[:17] in mine and "incoming" in mine
    theirs = page(client, bob)
    for secret in (
        "alice cold storage",
        "alice names the dice",
        SMALL_RECIPIENT,
        small_tx.txid[:17],
    ):
        assert secret not in theirs


def test_another_users_entry_cannot_be_deleted(client, alice, bob):
    entry = watch(alice, SMALL_RECIPIENT)
    client.force_login(bob)
    assert client.post(f"/alerts/watching/{entry.public_id}/delete/").status_code == 404
    assert WatchlistEntry.objects.filter(pk=entry.pk).exists()


def test_page_import_with_a_private_key_saves_nothing(client, alice):
    client.force_login(alice)
    data = f"kind,value\naddress,{SMALL_RECIPIENT}\nxpub,{BIP84_ZPRV}\n".encode()
    response = client.post(
        "/alerts/watching/import/",
        {"file": SimpleUploadedFile("w.csv", data, "text/csv")},
        follow=True,
    )
    body = response.content.decode()
    assert "line 3, value: this is a private key" in body
    assert "Nothing was imported." in body
    assert BIP84_ZPRV not in body
    assert not WatchlistEntry.objects.exists()


def test_whale_page_shows_the_viewers_own_hit_and_labels_only(client, alice, bob, whales):
    from tests.alerts.conftest import ZERO_FEE_927

    tx = whales[ZERO_FEE_927]
    address = tx.outputs[0].address
    watch(alice, address, note="alice watches this")
    PrivateLabel.objects.create(owner=alice, address=address, name="alice's label")
    fan_out(record("seen", tx).pk)
    mine = page(client, alice, f"/whales/{tx.txid}/")
    assert (
        "Watch hit (seen)" in mine and "alice watches this" in mine and "alice&#x27;s label" in mine
    )
    theirs = page(client, bob, f"/whales/{tx.txid}/")
    assert "Watch hit" not in theirs and "alice" not in theirs
    # the private label changed nothing shared
    assert not AddressLabel.objects.filter(address=address).exists()


def test_staff_promote_a_private_label_from_the_admin(client, alice, staff):
    label = PrivateLabel.objects.create(owner=alice, address=SMALL_SENDER, name="Dice site")
    client.force_login(staff)
    assert client.get("/admin/alerts/watchlistentry/").status_code == 200
    assert client.get("/admin/alerts/watchlistentry/add/").status_code == 200
    response = client.post(
        "/admin/alerts/privatelabel/",
        {"action": "promote_labels", "_selected_action": [label.pk]},
    )
    assert response.status_code == 302
    shared = AddressLabel.objects.get(address=SMALL_SENDER)
    assert (shared.entity, shared.source) == ("Dice site", f"user-label:{alice.pk}")
    label.refresh_from_db()
    assert label.promoted_id == shared.pk
