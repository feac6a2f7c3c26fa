"""The normalised transaction shape shared by ingest, classification and storage.

Pure Python, no Django: the ingest process, the classifier, the urgency scorer and the Celery
tasks all speak this shape, and it round-trips through JSON (Celery payloads are JSON only).
Amounts are integer satoshis. A value that the source did not give (an input without prevout on a
bitcoind-backed instance) is None, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SATS_PER_BTC = 100_000_000


@dataclass(frozen=True, slots=True)
class TxInput:
    prev_txid: str
    prev_vout: int
    address: str | None = None
    value: int | None = None  # None when the source sent no prevout
    sequence: int = 0xFFFFFFFF
    is_coinbase: bool = False


@dataclass(frozen=True, slots=True)
class TxOutput:
    value: int
    address: str | None = None
    script_type: str = ""


@dataclass(slots=True)
class WhaleTx:
    txid: str
    inputs: tuple[TxInput, ...]
    outputs: tuple[TxOutput, ...]
    weight: int
    vsize: int
    fee: int | None = None  # None when neither `fee` nor every prevout is known
    effective_fee_rate: float | None = None  # sat/vB, package-aware, as the source gave it
    first_seen: float | None = None
    flags: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def value(self) -> int:
        """Sum of outputs in satoshis: the whale test (DESIGN §4)."""
        return sum(o.value for o in self.outputs)

    @property
    def has_prevouts(self) -> bool:
        return all(i.value is not None or i.is_coinbase for i in self.inputs)

    @property
    def input_addresses(self) -> frozenset[str]:
        return frozenset(i.address for i in self.inputs if i.address)

    @property
    def transfer(self) -> int:
        """Value less outputs paying back to an input address (change)."""
        own = self.input_addresses
        return sum(o.value for o in self.outputs if o.address is None or o.address not in own)

    @property
    def fee_rate(self) -> float | None:
        if self.fee is None or self.vsize <= 0:
            return None
        return self.fee / self.vsize

    @property
    def best_fee_rate(self) -> float | None:
        """effectiveFeePerVsize when the source gave it, else fee / vsize (DESIGN §4)."""
        if self.effective_fee_rate is not None:
            return self.effective_fee_rate
        return self.fee_rate

    @property
    def rbf_signalled(self) -> bool:
        return any(i.sequence < 0xFFFFFFFE for i in self.inputs)

    def to_json(self) -> dict[str, Any]:
        return {
            "txid": self.txid,
            "inputs": [
                [i.prev_txid, i.prev_vout, i.address, i.value, i.sequence, i.is_coinbase]
                for i in self.inputs
            ],
            "outputs": [[o.value, o.address, o.script_type] for o in self.outputs],
            "weight": self.weight,
            "vsize": self.vsize,
            "fee": self.fee,
            "effective_fee_rate": self.effective_fee_rate,
            "first_seen": self.first_seen,
            "flags": self.flags,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WhaleTx:
        return cls(
            txid=data["txid"],
            inputs=tuple(
                TxInput(
                    prev_txid=i[0],
                    prev_vout=i[1],
                    address=i[2],
                    value=i[3],
                    sequence=i[4],
                    is_coinbase=i[5],
                )
                for i in data["inputs"]
            ),
            outputs=tuple(
                TxOutput(value=o[0], address=o[1], script_type=o[2]) for o in data["outputs"]
            ),
            weight=data["weight"],
            vsize=data["vsize"],
            fee=data["fee"],
            effective_fee_rate=data["effective_fee_rate"],
            first_seen=data["first_seen"],
            flags=data["flags"],
        )
