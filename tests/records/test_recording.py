"""Recording lifecycle events into PostgreSQL, with real mainnet whales."""

import dataclasses

import pytest

from detection.models import (
    AddressLabel,
    Block,
    Prediction,
    PredictionOutcome,
    WhaleEvent,
    WhaleStatus,
    WhaleTransaction,
)
from detection.recording import BadPayload, record_event
from tests.records.helpers import event, load_esplora, projection

pytestmark = pytest.mark.django_db

ZERO_FEE_927 = "5143ba5524d21b646de5cd5a1ab6ee7b7823a59c87a347d3b5339e9f977e7dcd"
ZERO_FEE_133 = "712db987272743dd6e02bdd00fd8a0718bbfd04d13495a97eb70cdc42c010b1e"
CONSOLIDATION_100 = "d385205568e5420bc73b190ede001678730d42744d0716d2c5c2b6467cf73082"
MEGA_24715 = "75e4e7fc47df2eafe8de86279cbd8cfe77746d502a8eca6d6f0cb9da1d9a04be"


@pytest.fixture(scope="module")
def whales_277647():
    return load_esplora("whales_block_277647.esplora_txs.json")


@pytest.fixture(scope="module")
def whales_702861():
    return load_esplora("whales_block_702861.esplora_txs_no_prevouts.json")


def test_block_277647_whales_recorded_with_exact_amounts(whales_277647):
    for txid in (ZERO_FEE_927, ZERO_FEE_133, CONSOLIDATION_100):
        record_event(event("seen", whales_277647[txid], projection=projection(tip=277646)))

    zero = WhaleTransaction.objects.get(txid=ZERO_FEE_927)
    assert (zero.value, zero.transfer, zero.fee) == (92_700_000_000, 92_700_000_000, 0)
    assert zero.fee_rate == 0.0
    assert zero.vsize == 225 and zero.weight == 900
    zero_prediction = zero.predictions.get()
    assert zero_prediction.urgency == 0.0
    assert zero_prediction.band == "low"
    assert zero_prediction.may_not_confirm_soon is True

    other_zero = WhaleTransaction.objects.get(txid=ZERO_FEE_133)
    assert (other_zero.value, other_zero.fee) == (13_330_798_472, 0)

    consolidation = WhaleTransaction.objects.get(txid=CONSOLIDATION_100)
    assert consolidation.value == 10_302_775_338
    assert consolidation.fee == 50_000
    assert consolidation.vsize == 4_223
    assert round(consolidation.fee_rate, 2) == 11.84
    assert len(consolidation.inputs) == 23
    assert "consolidation" in consolidation.shape_tags
    assert consolidation.has_prevouts
    assert WhaleEvent.objects.filter(kind="seen").count() == 3


def test_whales_without_prevouts_leave_the_input_side_unknown(whales_702861):
    record_event(event("seen", whales_702861[MEGA_24715], projection=projection(tip=702860)))
    whale = WhaleTransaction.objects.get(txid=MEGA_24715)
    assert whale.value == 2_471_519_546_778
    assert whale.fee is None and whale.fee_rate is None
    assert whale.has_prevouts is False
    assert all(i["value"] is None and i["address"] is None for i in whale.inputs)
    assert whale.from_entity == ""
    prediction = whale.predictions.get()
    assert prediction.urgency is None  # fee unknown: no score, never a guess


def test_redelivered_event_is_a_no_op(whales_277647):
    payload = event("seen", whales_277647[CONSOLIDATION_100], projection=projection(tip=277646))
    first = record_event(payload)
    second = record_event(payload)
    assert first.created and not second.created
    same_step_new_id = dict(payload, event_id="2f1a0a4e-5f76-4c1c-9a52-4f0c3a0e9b11")
    assert not record_event(same_step_new_id).created
    assert WhaleEvent.objects.count() == 1
    assert Prediction.objects.count() == 1


def test_confirmation_resolves_prediction(whales_277647):
    tx = whales_277647[CONSOLIDATION_100]
    record_event(event("seen", tx, projection=projection(tip=277645, block=0)))
    record_event(
        event(
            "confirmed",
            tx,
            seq=1,
            at=1_700_000_600.0,
            block={"height": 277647, "hash": "00" * 32, "time": 1_388_400_000},
        )
    )
    whale = WhaleTransaction.objects.get(txid=CONSOLIDATION_100)
    assert whale.status == WhaleStatus.CONFIRMED
    assert whale.confirmed_height == 277647
    assert whale.blocks_waited == 2
    prediction = whale.predictions.get()
    assert prediction.outcome == PredictionOutcome.CONFIRMED
    assert (prediction.predicted_blocks, prediction.actual_blocks) == (1, 2)
    assert prediction.hit is True and prediction.abs_error == 1  # one block late: a hit


def test_confirmed_before_seen_keeps_the_newer_status(whales_277647):
    tx = whales_277647[CONSOLIDATION_100]
    block = {"height": 277647, "hash": "11" * 32, "time": 1_388_400_000}
    record_event(event("confirmed", tx, seq=1, at=1_700_000_600.0, block=block))
    record_event(event("seen", tx, seq=0, at=1_700_000_000.0, projection=projection(tip=277646)))
    whale = WhaleTransaction.objects.get(txid=CONSOLIDATION_100)
    assert whale.status == WhaleStatus.CONFIRMED
    # The late prediction is resolved at once against the known block.
    assert whale.predictions.get().outcome == PredictionOutcome.CONFIRMED


def test_fee_bump_records_a_new_prediction_and_small_noise_does_not(whales_277647):
    tx = whales_277647[CONSOLIDATION_100]
    record_event(event("seen", tx, projection=projection(tip=100, block=3)))
    same = dataclasses.replace(tx, effective_fee_rate=11.9)
    record_event(event("updated", same, seq=1, projection=projection(tip=100, block=3)))
    assert Prediction.objects.count() == 1
    bumped = dataclasses.replace(tx, fee=200_000, effective_fee_rate=200_000 / 4223)
    record_event(event("updated", bumped, seq=2, projection=projection(tip=100, block=0)))
    whale = WhaleTransaction.objects.get(txid=CONSOLIDATION_100)
    assert whale.fee == 200_000
    assert whale.predictions.count() == 2
    newest = whale.predictions.order_by("-id").first()
    assert newest.projected_block == 0 and newest.predicted_blocks == 1


def test_replacement_continues_the_chain_and_old_txid_stays_findable(whales_277647):
    old = whales_277647[CONSOLIDATION_100]
    new = dataclasses.replace(old, txid="ab" * 32, fee=90_000)
    record_event(event("seen", old, projection=projection(tip=277640, block=2)))
    record_event(
        event(
            "replaced",
            new,
            seq=1,
            at=1_700_000_100.0,
            chain_txid=old.txid,
            replaced_txid=old.txid,
            replacing_txid=new.txid,
            projection=projection(tip=277640, block=0),
        )
    )
    old_row = WhaleTransaction.objects.get(txid=old.txid)
    new_row = WhaleTransaction.objects.get(txid=new.txid)
    assert old_row.status == WhaleStatus.REPLACED
    assert old_row.replaced_by == new_row
    assert new_row.chain == old_row
    assert old_row.conflict is False  # same payee: a fee bump, not a double spend
    assert old_row.predictions.get().outcome == PredictionOutcome.REPLACED
    assert list(old_row.chain_events.values_list("kind", flat=True).order_by("sequence")) == [
        "seen",
        "replaced",
    ]


def test_double_spend_flags_both_sides_and_records_the_winner(whales_277647):
    old = whales_277647[CONSOLIDATION_100]
    thief_output = dataclasses.replace(old.outputs[0], address="1BoatSLRHtKNngkdXEeobR76b53LETtpyT")
    new = dataclasses.replace(old, txid="cd" * 32, outputs=(thief_output, *old.outputs[1:]))
    record_event(event("seen", old, projection=projection(tip=10)))
    record_event(
        event(
            "replaced", new, seq=1, chain_txid=old.txid, replaced_txid=old.txid, at=1_700_000_001.0
        )
    )
    record_event(
        event("confirmed", new, seq=2, at=1_700_000_700.0, block={"height": 12, "hash": "22" * 32})
    )
    old_row = WhaleTransaction.objects.get(txid=old.txid)
    new_row = WhaleTransaction.objects.get(txid=new.txid)
    assert old_row.conflict and new_row.conflict
    assert (old_row.conflict_winner, new_row.conflict_winner) == (False, True)


def test_dropped_closes_open_predictions(whales_277647):
    tx = whales_277647[ZERO_FEE_133]
    record_event(event("seen", tx, projection=projection(tip=10)))
    record_event(event("dropped", tx, seq=1, at=1_700_003_600.0))
    whale = WhaleTransaction.objects.get(txid=tx.txid)
    assert whale.status == WhaleStatus.DROPPED
    assert whale.predictions.get().outcome == PredictionOutcome.DROPPED


def test_reorg_returns_whale_to_pending_and_reopens_predictions(whales_277647):
    tx = whales_277647[CONSOLIDATION_100]
    orphan = {"height": 277647, "hash": "33" * 32}
    record_event(event("seen", tx, projection=projection(tip=277646)))
    record_event(event("confirmed", tx, seq=1, at=1_700_000_600.0, block=orphan))
    record_event(event("reorged", tx, seq=2, at=1_700_000_700.0, block=orphan))
    whale = WhaleTransaction.objects.get(txid=tx.txid)
    assert whale.status == WhaleStatus.PENDING
    assert whale.confirmed_height is None
    prediction = whale.predictions.get()
    assert prediction.outcome == PredictionOutcome.OPEN and prediction.hit is None
    assert Block.objects.get(hash=orphan["hash"]).orphaned
    winner = {"height": 277647, "hash": "44" * 32}
    record_event(event("confirmed", tx, seq=3, at=1_700_000_800.0, block=winner))
    whale.refresh_from_db()
    assert whale.confirmed_hash == winner["hash"]
    assert whale.predictions.get().resolved_block_hash == winner["hash"]


def test_labels_give_flow_and_derived_labels_are_marked(whales_277647):
    tx = whales_277647[CONSOLIDATION_100]
    exchange_input = tx.inputs[0].address
    AddressLabel.objects.create(
        address=exchange_input, entity="Binance", kind="exchange", source="csv:test"
    )
    record_event(event("seen", tx, projection=projection(tip=1)))
    whale = WhaleTransaction.objects.get(txid=tx.txid)
    assert whale.flow == "exchange_outflow"
    assert whale.from_entity == "Binance"
    assert whale.inputs[0]["label"]["derived"] is False
    derived = AddressLabel.objects.filter(source="cluster")
    assert derived.exists()
    assert set(derived.values_list("entity", flat=True)) == {"Binance"}
    assert all(label.confidence < 1.0 for label in derived)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"kind": "seen", "txid": "aa", "event_id": "not-a-uuid"},
        {"kind": "exploded", "txid": "aa", "event_id": "2f1a0a4e-5f76-4c1c-9a52-4f0c3a0e9b11"},
    ],
)
def test_bad_payloads_are_rejected_without_rows(payload):
    with pytest.raises(BadPayload):
        record_event(payload)
    assert WhaleTransaction.objects.count() == 0
