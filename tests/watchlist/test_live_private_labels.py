"""A user's private labels on the live feed's rows (issue 21): over real sockets and the real
Redis channel layer, the labeller's pushed rows name their addresses and nobody else's do."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from alerts.watchlists import PrivateLabel
from dashboard.rows import labels_html
from tests.alerts.conftest import ZERO_FEE_927
from tests.dashboard.conftest import session_headers
from tests.dashboard.test_consumer import socket
from tests.watchlist.conftest import BLOCK_277647_HASH, record

pytestmark = pytest.mark.django_db(transaction=True)


async def open_feed(user, path="/ws/whales/"):
    communicator = socket(path=path, headers=await session_headers(user))
    assert (await communicator.connect())[0]
    snapshot = await communicator.receive_json_from(timeout=5)
    assert snapshot["type"] == "snapshot"
    return communicator, snapshot


async def next_event(communicator) -> dict:
    message = await communicator.receive_json_from(timeout=10)
    assert message["type"] == "whale.event", message
    return message


async def test_pushed_rows_show_the_owners_labels_only(alice, bob, whales):
    tx = whales[ZERO_FEE_927]
    recipient, sender = tx.outputs[0].address, tx.inputs[0].address
    await sync_to_async(PrivateLabel.objects.create)(owner=alice, address=recipient, name="Fund X")
    mine, _ = await open_feed(alice)
    filtered, _ = await open_feed(alice, "/ws/whales/?min_btc=1")
    theirs, _ = await open_feed(bob)

    await sync_to_async(record)("seen", tx)
    alice_event = (await next_event(mine))["event"]
    bob_event = (await next_event(theirs))["event"]
    alice_filtered = await next_event(filtered)

    fund_x = labels_html({recipient: "Fund X"})
    assert fund_x in alice_event["row_html"]
    assert alice_filtered["matches"] is True and fund_x in alice_filtered["event"]["row_html"]
    assert "Fund X" not in str(bob_event)
    # The overlay changes the labels slot and nothing else of the shared row.
    assert alice_event["row_html"].replace(fund_x, labels_html({}), 1) == bob_event["row_html"]
    assert "addresses" not in alice_event and "addresses" not in bob_event

    # A new label reaches the open socket without a reconnect; bob's rows stay bare.
    await sync_to_async(PrivateLabel.objects.create)(owner=alice, address=sender, name="Cold")
    await sync_to_async(record)(
        "confirmed",
        tx,
        seq=1,
        block={"height": 277647, "hash": BLOCK_277647_HASH, "time": 1388367102},
    )
    alice_confirmed = (await next_event(mine))["event"]
    assert alice_confirmed["kind"] == "confirmed"
    assert labels_html({recipient: "Fund X", sender: "Cold"}) in alice_confirmed["row_html"]
    bob_confirmed = (await next_event(theirs))["event"]
    assert "Fund X" not in str(bob_confirmed) and "Cold" not in str(bob_confirmed)
    await next_event(filtered)

    # A deleted label is gone from a reconnect's snapshot, which carries the viewer's labels.
    await sync_to_async(PrivateLabel.objects.filter(owner=alice, address=sender).delete)()
    again, snapshot = await open_feed(alice)
    [row] = snapshot["whales"]
    assert fund_x in row["row_html"] and "Cold" not in row["row_html"]
    bobs_again, bob_snapshot = await open_feed(bob)
    assert "Fund X" not in str(bob_snapshot)
    for communicator in (mine, filtered, theirs, again, bobs_again):
        await communicator.disconnect()


@pytest.mark.django_db
def test_feed_page_shows_the_viewers_labels_only(client, alice, bob, whales):
    tx = whales[ZERO_FEE_927]
    PrivateLabel.objects.create(owner=alice, address=tx.outputs[0].address, name="Fund X")
    record("seen", tx)
    client.force_login(alice)
    assert labels_html({tx.outputs[0].address: "Fund X"}) in client.get("/").content.decode()
    client.force_login(bob)
    assert "Fund X" not in client.get("/").content.decode()
