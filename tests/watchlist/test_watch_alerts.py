"""Watch hits end to end through recording and fan-out, on a real small payment of block 277647."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
import time_machine
from django.core.exceptions import ValidationError
from embit import base58

from alerts.fanout import fan_out
from alerts.models import Channel, Delivery, DeliveryStatus
from alerts.watchlists import PrivateLabel, WatchHit, WatchlistEntry
from detection.domain.esplora import whale_tx_from_esplora
from detection.models import AddressLabel, WhaleEvent, WhaleHourlyVolume, WhaleTransaction
from tests.alerts.conftest import ZERO_FEE_927, make_endpoint, make_subscription
from tests.watchlist.conftest import (
    BLOCK_277647_HASH,
    SMALL_RECIPIENT,
    SMALL_SENDER,
    SMALL_TXID,
    confirm,
    record,
    watch,
)
from tests.watchlist.test_xpub import BIP84_ZPRV, BIP84_ZPUB

pytestmark = pytest.mark.django_db


def deliveries(owner) -> list[Delivery]:
    return list(Delivery.objects.filter(owner=owner).order_by("id"))


def test_small_payment_alerts_its_watcher_seen_then_confirmed_and_no_one_else(alice, bob, small_tx):
    entry = watch(alice, SMALL_RECIPIENT, note="cold storage")
    make_subscription(bob, endpoints=[make_endpoint(bob, "https://hooks.example.org/bob")])

    seen = record("seen", small_tx)
    assert fan_out(seen.pk) == 1
    confirmed = confirm(small_tx)
    assert fan_out(confirmed.pk) == 1

    sent = deliveries(alice)
    assert [(d.channel, d.event.kind) for d in sent] == [("email", "seen"), ("email", "confirmed")]
    body = sent[0].body
    assert body["type"] == "whale.seen"
    assert body["data"]["whale"]["txid"] == SMALL_TXID
    [match] = body["data"]["watch"]["entries"]
    assert match == {
        "id": str(entry.public_id),
        "kind": "address",
        "value": SMALL_RECIPIENT,
        "note": "cold storage",
        "direction": "incoming",
        "amount_btc": "0.04621816",
        "addresses": [SMALL_RECIPIENT],
    }
    assert deliveries(bob) == []
    assert [h.event.kind for h in WatchHit.objects.filter(entry=entry).order_by("id")] == [
        "seen",
        "confirmed",
    ]
    # Recorded once, with the whale lifecycle, but never public.
    row = WhaleTransaction.everything.get(txid=SMALL_TXID)
    assert row.watch_only and row.status == "confirmed" and row.confirmed_height == 277647
    assert not WhaleTransaction.objects.filter(txid=SMALL_TXID).exists()
    assert not WhaleEvent.objects.filter(whale=row).exists()
    assert WhaleHourlyVolume.objects.count() == 0


def test_outgoing_only_on_a_receiving_address_alerts_nobody(alice, small_tx):
    watch(alice, SMALL_RECIPIENT, direction="outgoing")
    assert fan_out(record("seen", small_tx).pk) == 0
    assert fan_out(confirm(small_tx).pk) == 0
    assert deliveries(alice) == [] and WatchHit.objects.count() == 0


def test_outgoing_on_the_sender_alerts_with_the_spent_amount(alice, small_tx):
    watch(alice, SMALL_SENDER, direction="outgoing", min_btc="0.01")
    event = record("seen", small_tx)
    assert fan_out(event.pk) == 1
    [match] = deliveries(alice)[0].body["data"]["watch"]["entries"]
    assert match["direction"] == "outgoing"
    assert match["amount_btc"] == "0.54641816"


def test_bounds_filter_the_amount(alice, small_tx):
    watch(alice, SMALL_RECIPIENT, min_btc="0.05")
    assert fan_out(record("seen", small_tx).pk) == 0
    assert WatchHit.objects.count() == 0


def test_block_scan_only_hit_is_alerted_as_confirmed(alice, small_tx):
    watch(alice, SMALL_RECIPIENT)
    event = confirm(small_tx, seq=0)
    assert fan_out(event.pk) == 1
    [sent] = deliveries(alice)
    assert sent.body["type"] == "whale.confirmed"
    assert not WhaleTransaction.everything.get(txid=SMALL_TXID).seen_in_mempool


def test_a_watched_whale_gives_each_person_one_alert(alice, bob, whales):
    tx = whales[ZERO_FEE_927]
    hook = make_endpoint(alice, "https://hooks.example.org/alice")
    whale_rule = make_subscription(alice, endpoints=[hook])
    entry = watch(alice, tx.outputs[0].address)
    entry.delivery.webhooks.add(hook)
    make_subscription(bob, email=True)
    event = record("seen", tx)
    fan_out(event.pk)
    mine = deliveries(alice)
    assert sorted(d.channel for d in mine) == [Channel.EMAIL, Channel.WEBHOOK]
    assert all(d.subscription_id == whale_rule.pk for d in mine)
    assert all(d.body["data"]["watch"]["entries"][0]["id"] == str(entry.public_id) for d in mine)
    [theirs] = deliveries(bob)
    assert "watch" not in theirs.body["data"]
    # a whale stays public even when watched
    assert WhaleTransaction.objects.filter(txid=tx.txid).exists()


def test_entity_entry_matches_labelled_addresses(alice, small_tx):

    AddressLabel.objects.create(address=SMALL_SENDER, entity="Dice Fund", kind="other", source="t")
    watch(alice, "dice fund", kind="entity")
    assert fan_out(record("seen", small_tx).pk) == 1
    [match] = deliveries(alice)[0].body["data"]["watch"]["entries"]
    assert (match["kind"], match["direction"]) == ("entity", "outgoing")


def test_hit_on_the_third_receive_address_of_a_bip84_zpub(alice, block_277647_txs):
    entry = watch(alice, BIP84_ZPUB, kind="xpub")
    assert entry.targets.count() == 100  # 50 receive + 50 change
    third = entry.targets.get(branch=0, index=2).address
    assert third == "bc1qp59yckz4ae5c4efgw2s5wfyvrz0ala7rgvuz8z"
    # The real small payment, re-addressed to the zpub's 3rd receive address (a synthetic tx).
    raw = dict(block_277647_txs[SMALL_TXID])
    raw["txid"] = "ab" * 32
    raw["vout"] = [dict(raw["vout"][0], scriptpubkey_address=third, scriptpubkey_type="v0_p2wpkh")]
    tx = whale_tx_from_esplora(raw)
    assert fan_out(record("seen", tx).pk) == 1
    [match] = deliveries(alice)[0].body["data"]["watch"]["entries"]
    assert match["addresses"] == [third]
    entry.refresh_from_db()
    assert entry.receive_stop == 53 and entry.change_stop == 50  # the window moved past it
    assert entry.targets.count() == 103


def test_private_key_or_testnet_key_is_refused_and_nothing_saved(alice):

    with pytest.raises(ValidationError, match="private key"):
        watch(alice, BIP84_ZPRV, kind="xpub")
    raw = base58.decode_check(BIP84_ZPUB)
    vpub = base58.encode_check(bytes.fromhex("045f1cf6") + raw[4:])
    with pytest.raises(ValidationError, match="testnet"):
        watch(alice, vpub, kind="xpub")
    assert not WatchlistEntry.objects.exists()


def test_the_delivery_subscriptions_settings_apply(alice, small_tx):

    entry = watch(alice, SMALL_RECIPIENT)
    delivery = entry.delivery
    assert delivery.for_watchlist and delivery.name == "Watchlist"
    delivery.notify_seen = False
    delivery.quiet_start, delivery.quiet_end = time(11, 0), time(13, 0)
    delivery.save()
    assert fan_out(record("seen", small_tx).pk) == 0  # not wanted: no alert, but a hit
    assert WatchHit.objects.filter(entry=entry, event__kind="seen").exists()
    event = confirm(small_tx)
    with time_machine.travel(datetime(2026, 3, 1, 12, 0, tzinfo=UTC)):
        assert fan_out(event.pk) == 1
    [held] = deliveries(alice)
    assert held.status == DeliveryStatus.HELD  # quiet hours, as for any subscription


def test_watchlist_delivery_never_matches_whales(alice, whales):
    watch(alice, SMALL_RECIPIENT)  # creates alice's "Watchlist" subscription
    assert fan_out(record("seen", whales[ZERO_FEE_927]).pk) == 0


def test_a_whale_alert_carries_the_recipients_private_labels_only(alice, bob, whales):

    tx = whales[ZERO_FEE_927]
    address = tx.outputs[0].address
    PrivateLabel.objects.create(owner=alice, address=address, name="alice's exchange wallet")
    make_subscription(alice, email=True)
    make_subscription(bob, email=True)
    fan_out(record("seen", tx).pk)
    [mine] = deliveries(alice)
    assert mine.body["data"]["watch"] == {
        "entries": [],
        "labels": {address: "alice's exchange wallet"},
    }
    [theirs] = deliveries(bob)
    assert "watch" not in theirs.body["data"]
    # shared classification untouched
    assert WhaleTransaction.objects.get(txid=tx.txid).to_entity == ""


def test_a_reorged_watch_hit_is_alerted_to_its_watcher(alice, small_tx):
    watch(alice, SMALL_RECIPIENT)
    fan_out(record("seen", small_tx).pk)
    fan_out(confirm(small_tx).pk)
    reorged = record(
        "reorged", small_tx, seq=2, block={"height": 277647, "hash": BLOCK_277647_HASH}
    )
    fan_out(reorged.pk)
    kinds = [d.event.kind for d in deliveries(alice)]
    assert kinds == ["seen", "confirmed", "reorged"]
    assert WhaleTransaction.everything.get(txid=small_tx.txid).status == "pending"


def test_an_entry_whose_subscription_was_deleted_alerts_through_a_new_default(alice, small_tx):
    entry = watch(alice, SMALL_RECIPIENT)
    entry.delivery.delete()
    assert fan_out(record("seen", small_tx).pk) == 1
    entry.refresh_from_db()
    assert entry.delivery.for_watchlist
