"""Change estimation and the flows that depend on it, on real mainnet transactions.

Fixtures (provenance in tests/fixtures/blocks/NOTICE.md and tests/fixtures/mempool/NOTICE.md):
block 277647 whales and three more txs of that block (with prevouts), the 702861 whales (no
prevouts), and mempool.space's recorded test transactions (with prevouts).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detection.domain.addresses import script_type_of_address
from detection.domain.change import (
    ADDRESS_REUSE,
    BATCH_LARGEST,
    COINJOIN,
    ROUND_AMOUNT,
    SCRIPT_TYPE,
    estimate,
)
from detection.domain.esplora import whale_tx_from_esplora
from detection.domain.flow import (
    COINJOIN_LIKE,
    EXCHANGE_INTERNAL,
    EXCHANGE_OUTFLOW,
    FLAG_CONSOLIDATION,
    UNKNOWN,
    classify,
    is_collaborative_like,
)
from detection.domain.labels import Label
from detection.txshape import SATS_PER_BTC, TxInput, TxOutput, WhaleTx

from .conftest import load_whales

BTC = SATS_PER_BTC
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

TX_5143 = "5143ba5524d21b646de5cd5a1ab6ee7b7823a59c87a347d3b5339e9f977e7dcd"
TX_712D = "712db987272743dd6e02bdd00fd8a0718bbfd04d13495a97eb70cdc42c010b1e"
TX_D385 = "d385205568e5420bc73b190ede001678730d42744d0716d2c5c2b6467cf73082"
TX_D737 = "d73727303fab976be2ea94aa9cfdc17a1e13d9f248dd57afdb8a2c62bf97f3ed"
TX_32E7 = "32e74324248d723870bd840f142868e7cb0aeaae4898261dd90fd57ad47fddaa"
TX_308F = "308f81dfd5d226a7bd7627e688dd691bfabe05181156162ad00af2bd2395141c"
TX_13F0 = "13f007241d78e8b0b4e57d2ae3fd37bcfe3226534d7cadeba5a549860d960db0"
TX_7219 = "7219d95161f37183"  # prefix; the full txid is in transactions-rbfs.json
TX_7A3A = "7a3a4e088941ae289f9118d0e86bac51e1bfa78236f24d01e2ba8b9b30f2ea7f"
TX_46F9 = "46f9b2832f5cf8a55b776fec092294f4fab4e378be6e2d6e4fd3622387c1ec81"


@pytest.fixture(scope="module")
def block_277647() -> dict[str, WhaleTx]:
    return {
        **load_whales("whales_block_277647.esplora_txs.json"),
        **load_whales("change_block_277647.esplora_txs.json"),
    }


def mempool_txs(name: str) -> dict[str, WhaleTx]:
    with open(FIXTURES / "mempool" / name, encoding="utf-8") as handle:
        return {tx["txid"]: whale_tx_from_esplora(tx) for tx in json.load(handle)}


# --- change on real transactions ----------------------------------------------------------------


def test_address_reuse_change_block_277647(block_277647):
    # d7372730…: 11 inputs all from 1DKYwvpm…; outputs 22.86 BTC to 16u4Fpw… and
    # 12.34771453 BTC back to 1DKYwvpm…, an input address: that one is change.
    result = estimate(block_277647[TX_D737])
    assert result.change == (1,)
    assert result.moved == 2_286_000_000
    assert result.methods == (ADDRESS_REUSE,)
    assert result.confidence == 0.95

    # 32e74324…: the same wallet pays 0.0001 BTC and returns 14.9996 BTC to itself: a
    # 15 BTC "transfer" that moved 10,000 sats.
    result = estimate(block_277647[TX_32E7])
    assert result.moved == 10_000 and result.change == (1,)


def test_round_amount_change_block_277647(block_277647):
    # 712db987…: one input of 133.30798472 BTC, outputs 132.61498472 and 0.693 BTC (fee 0).
    # 0.693 BTC is a typed amount; 132.61498472 is what was left: change. It alerts as a
    # 133 BTC whale but moved 0.693 BTC.
    result = estimate(block_277647[TX_712D])
    assert result.change == (0,)
    assert result.moved == 69_300_000
    assert result.methods == (ROUND_AMOUNT,)
    assert result.confidence == 0.6

    # d3852055…: 23 inputs, 100 BTC to 11zro2w… and 3.02775338 BTC: the 100 BTC is the payment.
    result = estimate(block_277647[TX_D385])
    assert result.moved == 100 * BTC and result.change == (1,)


def test_no_change_found_keeps_the_total_with_low_confidence(block_277647):
    # 5143ba55…: 927 BTC in, 917 BTC and 10 BTC out to two fresh addresses, both round, both
    # p2pkh like the input: nothing tells payment from change, so the total stands, doubted.
    result = estimate(block_277647[TX_5143])
    assert result.moved == 927 * BTC and result.change == ()
    assert result.confidence == 0.3


def test_batch_payout_largest_output_block_277647(block_277647):
    # 308f81df…: one 23.37399687 BTC input paying 12 outputs; 22.73162438 BTC to one address
    # and 0.64227249 BTC spread over the 11 others: a payout batch whose big output is the
    # sender's change. Weak heuristic, low confidence.
    result = estimate(block_277647[TX_308F])
    assert result.change == (6,)
    assert result.moved == 64_227_249
    assert result.methods == (BATCH_LARGEST,)
    assert result.confidence == 0.4


def test_script_type_change_mempool_test_data():
    # 13f00724…: spends v0_p2wpkh; pays 344,697 sats to a p2pkh address and 265,396 sats to a
    # v0_p2wpkh address. The wallet's change goes to its own script type.
    tx = mempool_txs("transactions-random.json")[TX_13F0]
    assert {script_type_of_address(i.address) for i in tx.inputs} == {"v0_p2wpkh"}
    result = estimate(tx)
    assert result.change == (1,) and result.moved == 344_697
    assert result.methods == (SCRIPT_TYPE,) and result.confidence == 0.7


def test_equal_amounts_are_payments_not_change():
    # 7219d951…: p2pkh input; OP_RETURN, 155,000 sats to p2sh, 155,000 sats to p2pkh, and
    # 7.99675549 BTC back to the input address. The p2pkh 155,000 matches the input type, but
    # its twin amount says it is the second of two payments: only the reused address is change.
    txs = mempool_txs("transactions-rbfs.json")
    (tx,) = [t for txid, t in txs.items() if txid.startswith(TX_7219)]
    result = estimate(tx)
    assert result.change == (3,)
    assert result.moved == 310_000
    assert result.methods == (ADDRESS_REUSE,)


def test_no_prevouts_only_amount_heuristics():
    whales = load_whales("whales_block_702861.esplora_txs_no_prevouts.json")
    # 7a3a4e08…: 1 input, 10 outputs; 1,023.14329559 BTC to one address, 506.85659957 BTC over
    # nine others (several non-round): the batch rule names the big output change.
    result = estimate(whales[TX_7A3A])
    assert result.moved == 152_999_989_516 - 102_314_329_559
    assert result.methods == (BATCH_LARGEST,)
    # 46f9b283…: 706.28794268 and 0.00138526 BTC, both non-round, input type unknown: nothing.
    result = estimate(whales[TX_46F9])
    assert result.change == () and result.moved == whales[TX_46F9].value


# --- synthetic shapes the shared data has no example of -------------------------------------------


def make_tx(inputs, outputs, *, flags: int = 0) -> WhaleTx:
    return WhaleTx(
        txid="cd" * 32,
        inputs=tuple(
            TxInput(f"{n:064x}", 0, address=a, value=v) for n, (a, v) in enumerate(inputs)
        ),
        outputs=tuple(TxOutput(value=v, address=a) for a, v in outputs),
        weight=4000,
        vsize=1000,
        fee=1000,
        flags=flags,
    )


def test_coinjoin_moved_is_largest_single_participant():
    # 6 participants each bring ~21.5 BTC and get one 20 BTC output plus their change: 129 BTC
    # of outputs, but nobody can be shown to have moved more than 20 BTC.
    inputs = [(f"1In{n}", 21 * BTC + n * 10_000_000) for n in range(6)]
    outputs = [(f"bc1qmix{n}", 20 * BTC) for n in range(6)]
    outputs += [(f"1Change{n}", BTC + n * 10_000_000 - 1000) for n in range(6)]
    tx = make_tx(inputs, outputs)
    result = estimate(tx)
    assert result.coinjoin and result.methods == (COINJOIN,)
    assert result.moved == 20 * BTC
    assert classify(tx, {}).flow == UNKNOWN
    assert COINJOIN_LIKE in classify(tx, {}).shape_tags


def test_coinjoin_flag_from_server():
    tx = make_tx([("1A", 60 * BTC)], [("1B", 30 * BTC), ("1C", 29 * BTC)], flags=1 << 32)
    assert estimate(tx).moved == 30 * BTC


def test_exchange_consolidation_to_fresh_address_is_internal():
    # 50 exchange-labelled inputs into one new address: the exchange moving its own coins.
    labels = {f"1Ex{n}": Label("Binance", "exchange", "ops", 1.0) for n in range(50)}
    tx = make_tx([(f"1Ex{n}", 10 * BTC) for n in range(50)], [("1FreshCold", 500 * BTC - 1000)])
    result = classify(tx, labels)
    assert result.flow == EXCHANGE_INTERNAL
    assert result.from_entity == "Binance" and result.to_entity is None
    # Paying two recipients is a payment, consolidation shape or not.
    tx = make_tx(
        [(f"1Ex{n}", 10 * BTC) for n in range(50)],
        [("1Fresh", 400 * BTC), ("1Other", 100 * BTC - 1000)],
    )
    assert classify(tx, labels).flow == EXCHANGE_OUTFLOW
    # The server's consolidation flag alone makes it a consolidation too.
    tx = make_tx(
        [("1Ex0", 10 * BTC), ("1Ex1", 10 * BTC)], [("1Cold", 20 * BTC)], flags=FLAG_CONSOLIDATION
    )
    assert classify(tx, labels).flow == EXCHANGE_INTERNAL


def test_two_party_transactions_stay_out_of_clustering():
    exchange = Label("Kraken", "exchange", "ops", 1.0)
    # payjoin-like: the receiver adds a segwit input to the sender's p2pkh one.
    tx = make_tx(
        [("1KrakenHot", 5 * BTC), ("bc1q" + "x" * 38, 2 * BTC)],
        [("1Pay", 6 * BTC), ("1Chg", BTC - 1000)],
    )
    assert is_collaborative_like(tx)
    assert classify(tx, {"1KrakenHot": exchange}).cluster_candidates == ()
    # dual-funded channel open: two inputs fund a p2wsh 2-of-2.
    tx = make_tx(
        [("bc1q" + "a" * 38, 3 * BTC), ("bc1q" + "b" * 38, 3 * BTC)],
        [("bc1q" + "w" * 58, 6 * BTC - 1000)],
    )
    assert is_collaborative_like(tx)
    assert classify(tx, {"bc1q" + "a" * 38: exchange}).cluster_candidates == ()
    # An ordinary two-input spend by one wallet still clusters.
    tx = make_tx([("1KrakenHot", 5 * BTC), ("1Unknown", 2 * BTC)], [("1Pay", 7 * BTC - 1000)])
    assert not is_collaborative_like(tx)
    assert [c.address for c in classify(tx, {"1KrakenHot": exchange}).cluster_candidates] == [
        "1Unknown"
    ]


def test_script_type_of_address():
    assert script_type_of_address("18GGVNNJ5EYSyac8svtWDvAKtB2fVq2AmS") == "p2pkh"
    assert script_type_of_address("39X1VyGXCjcZuah1uaLp1AFCKbew8zpu9B") == "p2sh"
    assert script_type_of_address("bc1q" + "x" * 38) == "v0_p2wpkh"
    assert script_type_of_address("bc1q" + "x" * 58) == "v0_p2wsh"
    assert script_type_of_address("bc1p" + "x" * 58) == "v1_p2tr"
    assert script_type_of_address(None) == ""
