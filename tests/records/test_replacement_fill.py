"""A replacement learnt from a resync answer whose tx is fetched later (issue 13: the fetch runs
off the socket reader) ends in PostgreSQL exactly as when the tx came with the replacement."""

import orjson
import pytest

from alerts.fanout import fan_out
from alerts.models import AmountBasis, Delivery, Subscription, sats_from_btc
from detection.ingest.runner import FramePipeline
from detection.models import WhaleEvent, WhaleTransaction
from detection.recording import record_event
from tests.ingest.ingest_support import as_unconfirmed, mempool_frame, whales_277647

pytestmark = pytest.mark.django_db

NEW = "ee" * 32


def replacement_of(whale: dict) -> dict:
    tx = dict(whale, txid=NEW, fee=whale["fee"] + 12_345)
    vout = [dict(o) for o in whale["vout"]]
    vout[-1]["value"] -= 12_345
    tx["vout"] = vout
    return tx


def record(frames: list[dict]) -> list[dict]:
    pipeline = FramePipeline(source="test")
    events = []
    for at, frame in enumerate(frames, start=1):
        events += pipeline.process(1_700_000_000.0 + at, orjson.dumps(frame))[0]
    for event in events:
        assert record_event(event).created
    return events


def rows() -> dict:
    def row(whale: WhaleTransaction) -> dict:
        return {
            "status": whale.status,
            "chain": whale.chain_root.txid,
            "replaced_by": whale.replaced_by.txid if whale.replaced_by else None,
            "conflict": whale.conflict,
            **{
                name: getattr(whale, name)
                for name in ("value", "fee", "fee_rate", "vsize", "inputs", "outputs", "flow")
            },
            **{name: getattr(whale, name) for name in ("moved", "change_outputs", "shape_tags")},
            "open_predictions": whale.predictions.filter(outcome__isnull=True).count(),
        }

    return {w.txid: row(w) for w in WhaleTransaction.everything.order_by("txid")}


def test_late_tx_records_the_replacement_as_when_it_came_with_it():
    whale = as_unconfirmed(whales_277647()[0])
    new_tx = replacement_of(whale)
    seen = mempool_frame(1, added=[whale])
    carried = {"mempool-transactions": {"replaced": [{"replaced": whale["txid"], "by": new_tx}]}}

    before = record([seen, carried])
    assert [e["kind"] for e in before] == ["seen", "replaced"]
    expected = rows()
    WhaleEvent.everything.all().delete()
    WhaleTransaction.everything.all().delete()

    answer = {"tracked-txs": {whale["txid"]: {"replacedBy": NEW}}}
    after = record([seen, answer, carried])
    assert [e["kind"] for e in after] == ["seen", "replaced", "replaced"]
    assert after[1]["tx"] is None and after[2]["tx"]["txid"] == NEW
    assert after[2]["changes"] == before[1]["changes"]
    assert rows() == expected
    assert set(expected) == {whale["txid"], NEW}
    assert expected[whale["txid"]]["replaced_by"] == NEW
    assert expected[NEW]["fee"] == 62_345 and expected[NEW]["chain"] == whale["txid"]


def test_a_replacement_whose_tx_comes_late_is_alerted_once(alice):
    Subscription.objects.create(
        owner=alice,
        name="replacements",
        min_sats=sats_from_btc(100),
        email=True,
        notify_seen=False,
        amount_basis=AmountBasis.TOTAL,
    )
    whale = as_unconfirmed(whales_277647()[0])
    answer = {"tracked-txs": {whale["txid"]: {"replacedBy": NEW}}}
    carried = {
        "mempool-transactions": {
            "replaced": [{"replaced": whale["txid"], "by": replacement_of(whale)}]
        }
    }
    record([mempool_frame(1, added=[whale]), answer, carried])
    replaced = WhaleEvent.everything.filter(kind="replaced").order_by("sequence")
    assert replaced.count() == 2
    for event in replaced:
        fan_out(event.pk)  # at commit already; a second call is a no-op
    # The first event alerted; the second (the transaction arriving) completed the record only.
    deliveries = Delivery.objects.filter(owner=alice)
    assert list(deliveries.values_list("event_id", flat=True)) == [replaced[0].pk]
