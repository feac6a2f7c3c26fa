"""Only the owner hears of their watch hits: over the dashboard socket, by e-mail and webhook."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from alerts.delivery import send_delivery
from alerts.fanout import fan_out
from alerts.models import Delivery
from alerts.watchlists import PrivateLabel
from tests.alerts.conftest import json_body, make_endpoint, make_subscription
from tests.dashboard.conftest import session_headers
from tests.dashboard.test_consumer import socket
from tests.watchlist.conftest import SMALL_RECIPIENT, SMALL_SENDER, record, watch


@pytest.mark.django_db(transaction=True)
async def test_a_hit_reaches_only_its_owners_socket(alice, bob, small_tx):
    await sync_to_async(watch)(alice, SMALL_RECIPIENT, note="cold storage")
    await sync_to_async(PrivateLabel.objects.create)(
        owner=alice, address=SMALL_SENDER, name="the dice site"
    )
    mine = socket(path="/ws/whales/?whales=0", headers=await session_headers(alice))
    theirs = socket(path="/ws/whales/?whales=0", headers=await session_headers(bob))
    for communicator in (mine, theirs):
        assert (await communicator.connect())[0]
        assert (await communicator.receive_json_from(timeout=5))["type"] == "snapshot"
    # recorded as the ingest task does: the fan-out runs on commit and pushes the hit
    await sync_to_async(record)("seen", small_tx)
    message = await mine.receive_json_from(timeout=10)
    assert message["type"] == "watch.hit"
    hit = message["hit"]
    assert hit["kind"] == "seen" and hit["whale"]["txid"] == small_tx.txid
    [entry] = hit["watch"]["entries"]
    assert (entry["value"], entry["direction"], entry["note"]) == (
        SMALL_RECIPIENT,
        "incoming",
        "cold storage",
    )
    assert hit["watch"]["labels"] == {SMALL_SENDER: "the dice site"}
    # bob gets neither the hit nor a public event for this below-the-floor payment
    assert await theirs.receive_nothing(timeout=1.0)
    await mine.disconnect()
    await theirs.disconnect()


@pytest.mark.django_db
def test_email_and_webhook_go_to_the_owner_only(
    alice, bob, small_tx, smtp_server, receiver, allow_loopback
):
    alice_hook = make_endpoint(alice, receiver.url + "/alice")
    entry = watch(alice, SMALL_RECIPIENT, note="cold storage")
    entry.delivery.webhooks.add(alice_hook)
    bob_hook = make_endpoint(bob, receiver.url + "/bob")
    make_subscription(bob, endpoints=[bob_hook], min_btc=100)
    event = record("seen", small_tx)
    fan_out(event.pk)
    sent = list(Delivery.objects.filter(event=event))
    assert {(d.owner_id, d.channel) for d in sent} == {(alice.pk, "email"), (alice.pk, "webhook")}
    for delivery in sent:
        send_delivery(delivery.pk)
    [mail] = smtp_server.wait_for(1)
    assert mail["To"] == "alice@example.org"
    [request] = receiver.wait_for(1)
    assert request.path == "/hook/alice"
    body = json_body(request)
    assert body["data"]["watch"]["entries"][0]["note"] == "cold storage"
    assert body["data"]["whale"]["txid"] == small_tx.txid
    assert all(r.path != "/hook/bob" for r in receiver.requests)
    assert len(smtp_server.messages) == 1
