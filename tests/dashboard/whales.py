"""Whales for dashboard tests, recorded the way production records them (detection.recording)."""

from __future__ import annotations

import time

from detection.models import AddressLabel, WhaleTransaction
from detection.recording import record_event
from detection.txshape import SATS_PER_BTC, TxInput, TxOutput, WhaleTx
from tests.records.helpers import event, projection

EXCHANGE_ADDRESS = "bc1qexchangehotwallet0000000000000000000"
OTHER_EXCHANGE_ADDRESS = "bc1qotherexchange000000000000000000000000"


def txid(n: int) -> str:
    return f"{n:064x}"


def label_exchanges() -> None:
    AddressLabel.objects.create(
        address=EXCHANGE_ADDRESS, entity="Binance", kind="exchange", source="test-csv"
    )
    AddressLabel.objects.create(
        address=OTHER_EXCHANGE_ADDRESS, entity="Kraken", kind="exchange", source="test-csv"
    )


def whale_tx(
    n: int,
    btc: float,
    *,
    sender: str | None = None,
    receiver: str | None = None,
    fee: int = 50_000,
    rbf: bool = False,
    first_seen: float | None = None,
) -> WhaleTx:
    sats = int(btc * SATS_PER_BTC)
    return WhaleTx(
        txid=txid(n),
        inputs=(
            TxInput(
                prev_txid=f"{n + 10_000:064x}",
                prev_vout=0,
                address=sender or f"bc1qsender{n:030d}",
                value=sats + fee,
                sequence=0xFFFFFFFD if rbf else 0xFFFFFFFF,
            ),
        ),
        outputs=(TxOutput(value=sats, address=receiver or f"bc1qreceiver{n:028d}"),),
        weight=800,
        vsize=200,
        fee=fee,
        first_seen=first_seen,
    )


def see(tx: WhaleTx, *, at: float | None = None, tip: int = 900_000, block: int = 0, **extra):
    """A `seen` event with a prediction: block 0 and a fee well above the market is urgent."""
    at = time.time() if at is None else at
    return record_event(
        event(
            "seen",
            tx,
            seq=1,
            at=at,
            projection=projection(tip=tip, block=block, made_at=at, **extra),
        )
    )


def confirm(tx: WhaleTx, *, height: int, seq: int = 2, at: float | None = None, chain_txid=None):
    at = time.time() if at is None else at
    return record_event(
        event(
            "confirmed",
            tx,
            seq=seq,
            at=at,
            chain_txid=chain_txid or tx.txid,
            block={"height": height, "hash": f"{height:064x}", "time": at},
        )
    )


def replace(old: WhaleTx, new: WhaleTx, *, seq: int = 2, at: float | None = None, tip=900_000):
    at = time.time() if at is None else at
    return record_event(
        event(
            "replaced",
            new,
            seq=seq,
            at=at,
            chain_txid=old.txid,
            replaced_txid=old.txid,
            replacing_txid=new.txid,
            projection=projection(tip=tip, block=0, made_at=at),
        )
    )


def whale(n: int) -> WhaleTransaction:
    return WhaleTransaction.objects.get(txid=txid(n))
