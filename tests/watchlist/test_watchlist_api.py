"""/api/v1/watchlist/ and /api/v1/private-labels/: CRUD, hits, CSV, bad input, isolation."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from alerts.fanout import fan_out
from alerts.watchlists import PrivateLabel, WatchlistEntry
from detection.models import WatchTarget
from tests.watchlist.conftest import SMALL_RECIPIENT, SMALL_SENDER, record, watch
from tests.watchlist.test_xpub import BIP32_XPUB, BIP84_ZPRV, BIP84_ZPUB

pytestmark = pytest.mark.django_db

BASE = "/api/v1/watchlist/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def api(alice):
    return client_for(alice)


def upload(api, text: str | bytes):
    data = text.encode() if isinstance(text, str) else text
    return api.post(
        f"{BASE}import/",
        {"file": SimpleUploadedFile("w.csv", data, "text/csv")},
        format="multipart",
    )


def test_create_list_update_delete(api):
    created = api.post(
        BASE,
        {
            "kind": "address",
            "value": SMALL_RECIPIENT,
            "direction": "incoming",
            "min_btc": "0.01",
            "note": "cold storage",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["value"] == SMALL_RECIPIENT and body["min_btc"] == "0.01000000"
    assert body["addresses_watched"] == 1
    assert [e["id"] for e in api.get(BASE).json()] == [body["id"]]
    changed = api.patch(f"{BASE}{body['id']}/", {"direction": "outgoing"}, format="json")
    assert changed.status_code == 200 and changed.json()["direction"] == "outgoing"
    refused = api.patch(f"{BASE}{body['id']}/", {"value": SMALL_SENDER}, format="json")
    assert refused.status_code == 400 and "value" in refused.json()["error"]["fields"]
    assert api.delete(f"{BASE}{body['id']}/").status_code == 204
    assert not WatchTarget.objects.exists()


def test_xpub_entry_derives_its_window(api):
    response = api.post(BASE, {"kind": "xpub", "value": BIP84_ZPUB}, format="json")
    assert response.status_code == 201
    assert response.json()["addresses_watched"] == 100


@pytest.mark.parametrize(
    ("kind", "value", "field", "words"),
    [
        ("address", "1P33wMqVqwFVX84H8E2yGGFzxLniFS1z8G", "value", "bad checksum"),
        ("address", "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", "value", "wrong network"),
        ("xpub", BIP84_ZPRV, "value", "private key"),
        ("address", BIP84_ZPRV, "value", "private key"),
        ("entity", "", "value", ""),
        ("address", SMALL_RECIPIENT, "direction", ""),
    ],
)
def test_bad_input_names_the_field(api, kind, value, field, words):
    body = {"kind": kind, "value": value}
    if field == "direction":
        body["direction"] = "sideways"
    response = api.post(BASE, body, format="json")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert field in fields
    assert words in " ".join(fields[field])
    assert BIP84_ZPRV not in response.content.decode()
    assert not WatchlistEntry.objects.exists()


def test_duplicates_and_limits(api, settings):
    assert (
        api.post(BASE, {"kind": "address", "value": SMALL_RECIPIENT}, format="json").status_code
        == 201
    )
    again = api.post(BASE, {"kind": "address", "value": SMALL_RECIPIENT}, format="json")
    assert again.status_code == 400 and "Already" in str(again.json())
    settings.WATCHLIST_MAX_EXTENDED_KEYS = 1
    assert api.post(BASE, {"kind": "xpub", "value": BIP84_ZPUB}, format="json").status_code == 201
    refused = api.post(BASE, {"kind": "xpub", "value": BIP32_XPUB}, format="json")
    assert refused.status_code == 400 and "extended keys" in str(refused.json())
    settings.WATCHLIST_MAX_ENTRIES = 2
    third = api.post(BASE, {"kind": "entity", "value": "Binance"}, format="json")
    assert third.status_code == 400 and "At most 2" in str(third.json())


def test_csv_import_then_export_round_trips(api):
    text = (
        "kind,value,direction,min_btc,max_btc,note\n"
        f"address,{SMALL_RECIPIENT},incoming,0.01,,cold storage\n"
        "entity,Binance,either,,,=HYPERLINK(1)\n"
        f"xpub,{BIP84_ZPUB},either,,,\n"
    )
    response = upload(api, text)
    assert response.status_code == 201, response.content
    assert len(response.json()) == 3
    exported = api.get(f"{BASE}export/")
    assert exported["Content-Type"].startswith("text/csv")
    lines = exported.content.decode().splitlines()
    assert lines[0] == "kind,value,direction,min_btc,max_btc,note,min_fiat,max_fiat,fiat_currency"
    assert lines[1] == f"address,{SMALL_RECIPIENT},incoming,0.01000000,,cold storage,,,USD"
    assert lines[2] == "entity,Binance,either,,,'=HYPERLINK(1),,,USD"


def test_csv_with_bad_lines_saves_nothing_and_names_each_line(api):
    tpub = "tpubD6NzVbkrYhZ4XgiXtGrdW5XDAPFCL9h7we1vwNCpn8tGbBcgfVYjXyhWo4E1xkh56hjod1RhGjxbaTLV3X4FyWuejifB9jusQ46QzG87VKp"
    text = (
        "kind,value\n"
        f"address,{SMALL_RECIPIENT}\n"
        "address,1P33wMqVqwFVX84H8E2yGGFzxLniFS1z8G\n"
        f"xpub,{tpub}\n"
        f"xpub,{BIP84_ZPRV}\n"
        f"address,{SMALL_RECIPIENT}\n"
        "planet,Mars\n"
    )
    response = upload(api, text)
    assert response.status_code == 400
    errors = response.json()["error"]["fields"]["csv"]
    assert errors[0] == "line 3, value: Not a mainnet Bitcoin address (bad checksum)."
    assert errors[1].startswith("line 4, value:") and "testnet" in errors[1]
    assert errors[2].startswith("line 5, value:") and "private key" in errors[2]
    assert errors[3].startswith("line 7, kind:")
    assert errors[4] == f"line 6, value: duplicate of line 2: {SMALL_RECIPIENT}"
    assert BIP84_ZPRV not in response.content.decode()
    assert not WatchlistEntry.objects.exists() and not WatchTarget.objects.exists()


def test_a_10_mb_csv_is_refused_whole(api):
    line = f"address,{SMALL_RECIPIENT}\n".encode()
    data = b"kind,value\n" + line * (10_000_000 // len(line))
    response = upload(api, data)
    assert response.status_code == 400
    [error] = response.json()["error"]["fields"]["csv"]
    assert error.startswith("file: ") and "over the limit of 1,000,000 bytes" in error
    assert not WatchlistEntry.objects.exists()


def test_csv_header_and_encoding_errors(api):
    assert "header" in str(upload(api, "address,value\nx,y\n").json())
    assert "not UTF-8" in str(upload(api, b"kind,value\n\xff\xfe\n").json())
    assert "empty" in str(upload(api, "").json()) or upload(api, "").status_code == 400


# --- isolation --------------------------------------------------------------------------------


def test_a_second_user_sees_none_of_the_first_users_watchlist(alice, bob, small_tx):
    entry = watch(alice, SMALL_RECIPIENT, note="my cold storage")
    PrivateLabel.objects.create(owner=alice, address=SMALL_SENDER, name="Alice's dice fund")
    fan_out(record("seen", small_tx).pk)
    alice_api, bob_api = client_for(alice), client_for(bob)
    assert len(alice_api.get(f"{BASE}hits/").json()["results"]) == 1
    assert bob_api.get(BASE).json() == []
    assert bob_api.get(f"{BASE}{entry.public_id}/").status_code == 404
    assert (
        bob_api.patch(f"{BASE}{entry.public_id}/", {"note": "x"}, format="json").status_code == 404
    )
    assert bob_api.delete(f"{BASE}{entry.public_id}/").status_code == 404
    assert bob_api.get(f"{BASE}hits/").json()["results"] == []
    assert bob_api.get(f"{BASE}export/").content.decode() == (
        "kind,value,direction,min_btc,max_btc,note,min_fiat,max_fiat,fiat_currency\n"
    )
    assert bob_api.get("/api/v1/private-labels/").json() == []
    label = PrivateLabel.objects.get(owner=alice)
    assert bob_api.get(f"/api/v1/private-labels/{label.pk}/").status_code == 404
    # bob may watch the same address: his own entry, not a duplicate of alice's
    assert (
        bob_api.post(BASE, {"kind": "address", "value": SMALL_RECIPIENT}, format="json").status_code
        == 201
    )
    # the watch-only hit is in no public listing
    assert bob_api.get("/api/v1/whales/").json()["results"] == []
    assert bob_api.get(f"/api/v1/whales/{small_tx.txid}/").status_code == 404


def test_hits_name_the_entry_and_direction(api, alice, small_tx):
    entry = watch(alice, SMALL_RECIPIENT)
    fan_out(record("seen", small_tx).pk)
    [hit] = api.get(f"{BASE}hits/").json()["results"]
    assert hit["entry"] == str(entry.public_id)
    assert (hit["direction"], hit["event"], hit["txid"]) == ("incoming", "seen", small_tx.txid)
    assert hit["amount_btc"] == "0.04621816" and hit["whale"] is False


def test_private_labels_are_validated_and_promotable(api, alice, staff):
    response = api.post(
        "/api/v1/private-labels/", {"address": SMALL_SENDER, "name": "Fund X"}, format="json"
    )
    assert response.status_code == 201
    bad = api.post("/api/v1/private-labels/", {"address": "nope", "name": "x"}, format="json")
    assert bad.status_code == 400 and "address" in bad.json()["error"]["fields"]
    label = PrivateLabel.objects.get(owner=alice)
    shared = label.promote()
    assert (shared.address, shared.entity, shared.source) == (
        SMALL_SENDER,
        "Fund X",
        f"user-label:{alice.pk}",
    )
