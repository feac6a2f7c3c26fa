"""Convert an Esplora / mempool.space transaction object into the shared WhaleTx shape.

Handles both full objects (prevouts present: input addresses and values known) and the shape a
bitcoind-backed instance sends (`prevout: null`, `fee: null`): then input values and addresses
stay None and the fee stays None unless the object states it. Nothing is guessed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..txshape import TxInput, TxOutput, WhaleTx

COINBASE_PREV_TXID = "0" * 64
COINBASE_PREV_VOUT = 0xFFFFFFFF


def whale_tx_from_esplora(data: Mapping[str, Any]) -> WhaleTx:
    inputs = tuple(_input(vin) for vin in data["vin"])
    outputs = tuple(
        TxOutput(
            value=int(vout["value"]),
            address=vout.get("scriptpubkey_address"),
            script_type=vout.get("scriptpubkey_type", ""),
        )
        for vout in data["vout"]
    )
    weight = int(data["weight"])
    # mempool objects carry vsize = ceil(weight / 4); plain Esplora objects do not.
    vsize = int(data.get("vsize") or math.ceil(weight / 4))

    fee = data.get("fee")
    if fee is None and inputs and all(i.value is not None and not i.is_coinbase for i in inputs):
        fee = sum(i.value or 0 for i in inputs) - sum(o.value for o in outputs)
    effective = data.get("effectiveFeePerVsize")
    return WhaleTx(
        txid=data["txid"],
        inputs=inputs,
        outputs=outputs,
        weight=weight,
        vsize=vsize,
        fee=int(fee) if fee is not None else None,
        effective_fee_rate=float(effective) if effective is not None else None,
        first_seen=data.get("firstSeen"),
        flags=int(data.get("flags") or 0),
    )


def _input(vin: Mapping[str, Any]) -> TxInput:
    is_coinbase = bool(vin.get("is_coinbase", False))
    prevout = vin.get("prevout")
    return TxInput(
        prev_txid=vin.get("txid") or COINBASE_PREV_TXID,
        prev_vout=int(vin["vout"]) if vin.get("vout") is not None else COINBASE_PREV_VOUT,
        address=prevout.get("scriptpubkey_address") if prevout else None,
        value=int(prevout["value"]) if prevout and prevout.get("value") is not None else None,
        sequence=int(vin.get("sequence", 0xFFFFFFFF)),
        is_coinbase=is_coinbase,
    )
