"""The raw-block deserializer on two real mainnet blocks: 277647 (pre-segwit, 213 txs) and
702861 (segwit, 2,500 txs), and on damaged copies of them."""

from __future__ import annotations

import hashlib

import pytest
from ingest_support import (
    BLOCK_277647,
    BLOCK_702861,
    esplora_txs_277647,
    raw_block_277647,
    raw_block_702861,
    txids_277647,
    whales_277647,
    whales_702861,
)

from detection.domain.addresses import script_address
from detection.ingest.blockparse import BlockParseError, parse_block, parse_header

FLOOR = 100 * 100_000_000


def test_block_277647_txids_outputs_and_whales():
    block = parse_block(raw_block_277647(), BLOCK_277647)
    assert block.hash == BLOCK_277647
    assert block.header.previous_hash == (
        "0000000000000000c86826ab2fbe4639ec413004955a36e77c2267988579e653"
    )
    assert block.header.time == 1388367102
    assert [tx.txid for tx in block.txs] == txids_277647()
    # Every tx's outputs, sizes and weights equal the Esplora objects derived from the block.
    for tx, esplora in zip(block.txs, esplora_txs_277647(), strict=True):
        assert tx.txid == esplora["txid"]
        assert (tx.size, tx.weight) == (esplora["size"], esplora["weight"])
        assert [value for value, _ in tx.outputs] == [o["value"] for o in esplora["vout"]]
        assert [script.hex() for _, script in tx.outputs] == [
            o["scriptpubkey"] for o in esplora["vout"]
        ]
        assert [script_address(s) for _, s in tx.outputs] == [
            (o["scriptpubkey_type"], o.get("scriptpubkey_address")) for o in esplora["vout"]
        ]
    whales = block.whales(FLOOR)
    assert {tx.txid: tx.output_sum for tx in whales} == {
        "5143ba5524d21b646de5cd5a1ab6ee7b7823a59c87a347d3b5339e9f977e7dcd": 92_700_000_000,
        "712db987272743dd6e02bdd00fd8a0718bbfd04d13495a97eb70cdc42c010b1e": 13_330_798_472,
        "d385205568e5420bc73b190ede001678730d42744d0716d2c5c2b6467cf73082": 10_302_775_338,
    }
    assert {tx.txid for tx in whales} == {tx["txid"] for tx in whales_277647()}


def test_block_702861_segwit_txids_and_whales():
    block = parse_block(raw_block_702861(), BLOCK_702861)
    assert block.header.previous_hash == (
        "00000000000000000009c3deb8b5e706d7be57a427f4f03f01c49d5219213b5f"
    )
    assert block.header.time == 1633002641
    txids = [tx.txid for tx in block.txs]
    assert len(txids) == 2500
    # SHA-256 of the txid list of block_702861.txids.json (shared data), one per line.
    digest = hashlib.sha256("\n".join(txids).encode()).hexdigest()
    assert digest == "d29419cb9e817f71a0faf270195c40546dc39cdf9a7605cbc14fc9e11ac7a684"
    # Totals of block_702861.tx_summary.json: coinbase 6.29948405 BTC, weight, all outputs.
    assert block.txs[0].is_coinbase and block.txs[0].output_sum == 629_948_405
    assert sum(tx.weight for tx in block.txs) == 3_992_722
    assert sum(tx.output_sum for tx in block.txs[1:]) == 2_883_052_780_585
    whales = {tx.txid: tx for tx in block.whales(FLOOR)}
    expected = {tx["txid"]: tx for tx in whales_702861()}
    assert set(whales) == set(expected)
    assert whales[
        "75e4e7fc47df2eafe8de86279cbd8cfe77746d502a8eca6d6f0cb9da1d9a04be"
    ].output_sum == (2_471_519_546_778)
    for txid, tx in whales.items():
        esplora = tx.to_esplora(block.header, 702861)
        want = expected[txid]
        assert (esplora["size"], esplora["weight"]) == (want["size"], want["weight"])
        assert esplora["vout"] == [
            {
                k: o[k]
                for k in ("scriptpubkey", "scriptpubkey_type", "scriptpubkey_address", "value")
                if k in o
            }
            for o in want["vout"]
        ]
        assert [(i["txid"], i["vout"], i["sequence"]) for i in esplora["vin"]] == [
            (i["txid"], i["vout"], i["sequence"]) for i in want["vin"]
        ]
        assert all(i["prevout"] is None for i in esplora["vin"]) and esplora["fee"] is None
        assert esplora["status"] == want["status"]


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda b: b[: len(b) // 2], "truncated"),
        (lambda b: b[:-1], "truncated"),
        (lambda b: b[:40], "truncated"),
        (lambda b: b + b"\x00", "trailing_bytes"),
        (lambda b: b"<html><body>502 Bad Gateway</body></html>" * 4, "wrong_hash"),
        # One output value changed: same header, so only the merkle root can tell.
        (lambda b: b[:-200] + bytes([b[-200] ^ 1]) + b[-199:], "bad_merkle_root"),
    ],
)
def test_damaged_blocks_are_rejected(damage, reason):
    raw = raw_block_702861()
    with pytest.raises(BlockParseError) as error:
        parse_block(damage(raw), BLOCK_702861)
    assert error.value.reason == reason


def test_another_block_is_the_wrong_hash():
    with pytest.raises(BlockParseError) as error:
        parse_block(raw_block_277647(), BLOCK_702861)
    assert error.value.reason == "wrong_hash"


def test_header_alone():
    header = parse_header(raw_block_277647()[:80])
    assert header.hash == BLOCK_277647
    assert header.merkle_root == parse_block(raw_block_277647()).header.merkle_root
