"""Real mainnet whales through the converter and classifier; every flow class on small fixtures."""

from __future__ import annotations

import json

import pytest

from detection.domain.esplora import whale_tx_from_esplora
from detection.domain.flow import (
    BATCH_PAYOUT,
    CLUSTER_CONFIDENCE_CAP,
    COINJOIN_LIKE,
    CONSOLIDATION,
    EXCHANGE_INFLOW,
    EXCHANGE_INTERNAL,
    EXCHANGE_OUTFLOW,
    INTER_EXCHANGE,
    RBF_SIGNALLED,
    UNKNOWN,
    classify,
    shape_tags,
)
from detection.domain.labels import CLUSTER_SOURCE, Label
from detection.txshape import SATS_PER_BTC, TxInput, TxOutput, WhaleTx

BTC = SATS_PER_BTC
FINAL = 0xFFFFFFFF

TX_5143 = "5143ba5524d21b646de5cd5a1ab6ee7b7823a59c87a347d3b5339e9f977e7dcd"
TX_712D = "712db987272743dd6e02bdd00fd8a0718bbfd04d13495a97eb70cdc42c010b1e"
TX_D385 = "d385205568e5420bc73b190ede001678730d42744d0716d2c5c2b6467cf73082"


def exchange(name: str, confidence: float = 1.0, source: str = "ops") -> Label:
    return Label(name, "exchange", source, confidence)


def make_tx(
    inputs: list[tuple[str | None, int | None]],
    outputs: list[tuple[str | None, int]],
    *,
    txid: str = "ab" * 32,
    sequence: int = FINAL,
) -> WhaleTx:
    return WhaleTx(
        txid=txid,
        inputs=tuple(
            TxInput(f"{n:064x}", 0, address=a, value=v, sequence=sequence)
            for n, (a, v) in enumerate(inputs)
        ),
        outputs=tuple(TxOutput(value=v, address=a) for a, v in outputs),
        weight=1000,
        vsize=250,
        fee=1000 if all(v is not None for _, v in inputs) else None,
    )


# --- real data: block 277647 (with prevouts) -----------------------------------------------------


def test_block_277647_values_transfers_and_fees(whales_277647):
    assert set(whales_277647) == {TX_5143, TX_712D, TX_D385}

    tx = whales_277647[TX_5143]
    assert sum(i.value for i in tx.inputs) == 927 * BTC
    assert [o.value for o in tx.outputs] == [10 * BTC, 917 * BTC]
    assert tx.value == 927 * BTC and tx.transfer == 927 * BTC  # no change to the input address
    assert tx.fee == 0 and tx.fee_rate == 0.0 and tx.has_prevouts

    tx = whales_277647[TX_712D]
    assert tx.fee == 0
    assert sum(i.value for i in tx.inputs) == tx.value == 13_330_798_472

    tx = whales_277647[TX_D385]
    assert len(tx.inputs) == 23 and len(tx.outputs) == 2
    assert tx.outputs[0].value == 100 * BTC
    assert tx.outputs[0].address == "11zro2wX8v6mkd99VuQShMrisZNLxYFNm"
    assert tx.fee == 50_000
    assert sum(i.value for i in tx.inputs) - tx.value == 50_000
    assert (tx.weight, tx.vsize) == (16_892, 4_223)
    assert tx.fee_rate == pytest.approx(11.84, abs=0.005)
    assert tx.best_fee_rate == tx.fee_rate
    assert shape_tags(tx) == (CONSOLIDATION,)


def test_block_277647_round_trips_through_the_shared_json(whales_277647):
    for tx in whales_277647.values():
        assert WhaleTx.from_json(json.loads(json.dumps(tx.to_json()))) == tx


def test_real_whale_flows_with_labels(whales_277647):
    tx = whales_277647[TX_D385]
    input_addresses = sorted(tx.input_addresses)
    assert len(input_addresses) == 4
    seed, *others = input_addresses
    labels = {seed: exchange("Exchange A", 0.9), "11zro2wX8v6mkd99VuQShMrisZNLxYFNm": exchange("B")}
    result = classify(tx, labels)
    assert result.flow == INTER_EXCHANGE
    assert (result.from_entity, result.to_entity) == ("Exchange A", "B")
    assert result.to_share == pytest.approx(100 / 103.02775338)
    assert [c.address for c in result.cluster_candidates] == others
    assert {c.label for c in result.cluster_candidates} == {
        Label("Exchange A", "exchange", CLUSTER_SOURCE, 0.5)
    }
    assert {c.evidence_txid for c in result.cluster_candidates} == {TX_D385}

    # Unlabelled everywhere: a known, unlabelled sender is still not an exchange flow.
    assert classify(whales_277647[TX_5143], {}).flow == UNKNOWN


# --- real data: block 702861 (no prevouts) -------------------------------------------------------


def test_block_702861_input_side_unknown_nothing_guessed(whales_702861):
    assert len(whales_702861) == 4
    recipient = "19iqYbeATe4RxghQZJnYVFU4mjUUu76EA6"
    labels = {recipient: exchange("Exchange X")}
    for tx in whales_702861.values():
        assert tx.fee is None and tx.fee_rate is None and tx.best_fee_rate is None
        assert not tx.has_prevouts and tx.input_addresses == frozenset()
        assert all(i.value is None and i.address is None for i in tx.inputs)
        assert tx.transfer == tx.value
        result = classify(tx, labels)
        assert result.from_entity is None and not result.input_side_known
        assert result.cluster_candidates == ()
        assert result.flow == UNKNOWN  # even when the recipient is a labelled exchange

    mega = whales_702861["75e4e7fc47df2eafe8de86279cbd8cfe77746d502a8eca6d6f0cb9da1d9a04be"]
    assert mega.value == 2_471_519_546_778 and (mega.weight, mega.vsize) == (1600, 400)
    assert classify(mega, labels).to_entity == "Exchange X"

    batch = whales_702861["7a3a4e088941ae289f9118d0e86bac51e1bfa78236f24d01e2ba8b9b30f2ea7f"]
    assert batch.value == 152_999_989_516 and len(batch.outputs) == 10
    assert shape_tags(batch) == (BATCH_PAYOUT,)

    rbf = whales_702861["46f9b2832f5cf8a55b776fec092294f4fab4e378be6e2d6e4fd3622387c1ec81"]
    assert shape_tags(rbf) == (RBF_SIGNALLED,)
    assert rbf.vsize == 143  # ceil(569 / 4)


def test_converter_computes_fee_from_prevouts_when_absent():
    data = {
        "txid": "cd" * 32,
        "vin": [
            {
                "txid": "ef" * 32,
                "vout": 1,
                "prevout": {
                    "scriptpubkey_address": "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
                    "value": 5000,
                },
                "is_coinbase": False,
                "sequence": 0xFFFFFFFD,
            }
        ],
        "vout": [{"value": 4000, "scriptpubkey_type": "op_return"}],
        "weight": 401,
        "effectiveFeePerVsize": 12.5,
        "firstSeen": 1_700_000_000,
        "flags": 1,
    }
    tx = whale_tx_from_esplora(data)
    assert tx.fee == 1000 and tx.vsize == 101 and tx.best_fee_rate == 12.5
    assert tx.outputs[0].address is None and tx.rbf_signalled and tx.first_seen == 1_700_000_000


# --- every flow class ---------------------------------------------------------------------------

LABELS = {
    "a_hot": exchange("Alpha"),
    "a_cold": exchange("ALPHA"),  # same entity, other spelling
    "b_hot": exchange("Beta"),
    "pool": Label("Some Pool", "miner", "pools-v2"),
    "custody": Label("Vault Co", "custodian", "ops"),
}


@pytest.mark.parametrize(
    ("inputs", "outputs", "flow", "from_entity", "to_entity"),
    [
        (
            [("user", 500 * BTC)],
            [("a_hot", 499 * BTC), ("user", BTC)],
            EXCHANGE_INFLOW,
            None,
            "Alpha",
        ),
        (
            [("a_hot", 500 * BTC)],
            [("user", 400 * BTC), ("a_hot", 100 * BTC)],
            EXCHANGE_OUTFLOW,
            "Alpha",
            None,
        ),
        ([("a_hot", 500 * BTC)], [("b_hot", 500 * BTC)], INTER_EXCHANGE, "Alpha", "Beta"),
        ([("a_hot", 500 * BTC)], [("a_cold", 500 * BTC)], EXCHANGE_INTERNAL, "Alpha", "ALPHA"),
        ([("user", 500 * BTC)], [("other", 500 * BTC)], UNKNOWN, None, None),
        # A miner depositing to an exchange is an inflow; an exchange paying a custodian an outflow.
        ([("pool", 500 * BTC)], [("b_hot", 500 * BTC)], EXCHANGE_INFLOW, "Some Pool", "Beta"),
        ([("a_hot", 500 * BTC)], [("custody", 500 * BTC)], EXCHANGE_OUTFLOW, "Alpha", "Vault Co"),
        ([("pool", 500 * BTC)], [("custody", 500 * BTC)], UNKNOWN, "Some Pool", "Vault Co"),
        # Self-send back to the input address only: the exchange pays itself.
        ([("a_hot", 500 * BTC)], [("a_hot", 500 * BTC)], EXCHANGE_INTERNAL, "Alpha", "Alpha"),
    ],
)
def test_flow_classes(inputs, outputs, flow, from_entity, to_entity):
    result = classify(make_tx(inputs, outputs), LABELS)
    assert (result.flow, result.from_entity, result.to_entity) == (flow, from_entity, to_entity)
    assert result.input_side_known


def test_largest_recipient_decides_and_change_is_excluded():
    # 999 BTC to a fresh address and 1 BTC to an exchange: not an inflow.
    result = classify(
        make_tx([("user", 1000 * BTC)], [("fresh", 999 * BTC), ("b_hot", BTC)]), LABELS
    )
    assert (result.flow, result.to_entity) == (UNKNOWN, None)

    # Exchange withdrawal batch: many unlabelled outputs, each smaller than the exchange's own
    # new address; the change back to the input address does not count.
    outputs = [(f"user{n}", 10 * BTC) for n in range(8)] + [
        ("a_cold", 30 * BTC),
        ("a_hot", 900 * BTC),
    ]
    result = classify(make_tx([("a_hot", 1000 * BTC)], outputs), LABELS)
    assert (result.flow, result.to_entity) == (EXCHANGE_INTERNAL, "ALPHA")
    assert result.to_share == pytest.approx(30 / 110)

    # Two labelled recipients: the one receiving more wins; a tie goes to the labelled side.
    outputs = [("a_cold", 200 * BTC), ("b_hot", 300 * BTC), ("fresh", 300 * BTC)]
    result = classify(make_tx([("user", 800 * BTC)], outputs), LABELS)
    assert (result.flow, result.to_entity) == (EXCHANGE_INFLOW, "Beta")


def test_sender_is_the_labelled_entity_with_most_input_value():
    inputs = [("a_hot", 10 * BTC), ("b_hot", 300 * BTC), ("user", 400 * BTC)]
    result = classify(make_tx(inputs, [("fresh", 710 * BTC)]), LABELS)
    assert (result.flow, result.from_entity) == (EXCHANGE_OUTFLOW, "Beta")
    assert result.cluster_candidates == ()  # input labels disagree: no clustering


def test_min_confidence_ignores_weak_labels():
    labels = {"a_hot": exchange("Alpha", 0.2)}
    tx = make_tx([("user", 500 * BTC)], [("a_hot", 500 * BTC)])
    assert classify(tx, labels).flow == EXCHANGE_INFLOW
    assert classify(tx, labels, min_confidence=0.5).flow == UNKNOWN


# --- shape tags and clustering -------------------------------------------------------------------


def coinjoin_tx(extra_inputs: list[tuple[str, int]] = ()) -> WhaleTx:
    inputs = [(f"participant{n}", 21 * BTC) for n in range(5)] + list(extra_inputs)
    outputs = [(f"mixed{n}", 20 * BTC) for n in range(5)] + [(f"change{n}", BTC) for n in range(5)]
    return make_tx(inputs, outputs)


def test_shape_tags():
    assert shape_tags(make_tx([(f"i{n}", BTC) for n in range(5)], [("o", 5 * BTC)])) == (
        CONSOLIDATION,
    )
    assert shape_tags(make_tx([(f"i{n}", BTC) for n in range(4)], [("o", 4 * BTC)])) == ()
    assert shape_tags(make_tx([("i", 5 * BTC)], [(f"o{n}", BTC) for n in range(5)])) == (
        BATCH_PAYOUT,
    )
    assert shape_tags(make_tx([("i", 5 * BTC)], [(f"o{n}", BTC) for n in range(4)])) == ()
    assert shape_tags(make_tx([("i", BTC)], [("o", BTC)], sequence=0xFFFFFFFD)) == (RBF_SIGNALLED,)
    assert shape_tags(make_tx([("i", BTC)], [("o", BTC)], sequence=0xFFFFFFFE)) == ()
    assert shape_tags(coinjoin_tx()) == (COINJOIN_LIKE,)
    # Equal dust outputs are not a denomination.
    dusty = make_tx(
        [(f"i{n}", BTC) for n in range(5)], [(f"o{n}", 546) for n in range(5)] + [("big", BTC)]
    )
    assert COINJOIN_LIKE not in shape_tags(dusty)
    # Fewer inputs than equal outputs: a batch payout of equal amounts, not a coinjoin.
    batch = make_tx([("i", 100 * BTC)], [(f"o{n}", BTC) for n in range(10)])
    assert shape_tags(batch) == (BATCH_PAYOUT,)


def test_clustering_proposes_unlabelled_co_inputs():
    tx = make_tx(
        [("a_hot", 300 * BTC), ("unknown1", 100 * BTC), ("unknown2", 100 * BTC), ("unknown1", BTC)],
        [("fresh", 501 * BTC)],
        txid="f0" * 32,
    )
    labels = {"a_hot": exchange("Alpha", 0.7)}
    result = classify(tx, labels)
    assert result.flow == EXCHANGE_OUTFLOW
    assert [c.address for c in result.cluster_candidates] == ["unknown1", "unknown2"]
    for candidate in result.cluster_candidates:
        assert candidate.label == Label("Alpha", "exchange", CLUSTER_SOURCE, pytest.approx(0.42))
        assert candidate.label.is_derived and candidate.evidence_txid == "f0" * 32

    # Confidence is capped below any curated label.
    result = classify(tx, {"a_hot": exchange("Alpha", 1.0)})
    assert {c.label.confidence for c in result.cluster_candidates} == {CLUSTER_CONFIDENCE_CAP}


def test_clustering_never_for_coinjoins_derived_seeds_or_non_exchanges():
    cj = coinjoin_tx()
    labels = {"participant0": exchange("Alpha")}
    result = classify(cj, labels)
    assert COINJOIN_LIKE in result.shape_tags
    assert result.cluster_candidates == ()
    assert result.from_entity is None and result.flow == UNKNOWN

    tx = make_tx([("a_hot", 300 * BTC), ("unknown1", 100 * BTC)], [("fresh", 400 * BTC)])
    derived_only = {"a_hot": Label("Alpha", "exchange", CLUSTER_SOURCE, 0.5)}
    assert classify(tx, derived_only).cluster_candidates == ()
    assert classify(tx, derived_only).flow == EXCHANGE_OUTFLOW  # still attributes the sender

    miner_seed = {"a_hot": Label("Some Pool", "miner", "pools-v2")}
    assert classify(tx, miner_seed).cluster_candidates == ()

    # An address that already has any label (even a weak one) is never proposed.
    weak = {"a_hot": exchange("Alpha"), "unknown1": exchange("Alpha", 0.1)}
    assert classify(tx, weak, min_confidence=0.5).cluster_candidates == ()
