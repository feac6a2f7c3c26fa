"""Convert an Esplora / mempool.space transaction object into the shared WhaleTx shape.

Handles both full objects (prevouts present: input addresses and values known) and the shape a
bitcoind-backed instance sends (`prevout: null`, `fee: null`): then input values and addresses
stay None and the fee stays None unless the object states it, or every prevout gives it. Nothing
is guessed. The field-by-field conversion is the ingest parser's, so fixtures and live frames
become the same WhaleTx.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from detection.ingest.protocol import whale_from_esplora
from detection.txshape import WhaleTx


def whale_tx_from_esplora(data: Mapping[str, Any]) -> WhaleTx:
    weight = int(data["weight"])
    # mempool objects carry vsize = ceil(weight / 4); plain Esplora objects do not.
    vsize = int(data.get("vsize") or math.ceil(weight / 4))
    fee = data.get("fee")
    if fee is None:
        fee = _fee_from_prevouts(data)
    effective = data.get("effectiveFeePerVsize")
    return whale_from_esplora(
        dict(data),
        fee=int(fee) if fee is not None else None,
        weight=weight,
        vsize=vsize,
        effective_rate=float(effective) if effective is not None else None,
    )


def _fee_from_prevouts(data: Mapping[str, Any]) -> int | None:
    vin = data["vin"]
    if not vin or any(i.get("is_coinbase") or not i.get("prevout") for i in vin):
        return None
    values = [i["prevout"].get("value") for i in vin]
    if any(v is None for v in values):
        return None
    return sum(values) - sum(o["value"] for o in data["vout"])
