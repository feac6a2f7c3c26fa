"""Replay recordings through the real ingest command, Celery worker and PostgreSQL."""

import json

import pytest
from django.core.management import call_command

from detection.models import Block, EventKind, WhaleEvent, WhaleStatus, WhaleTransaction
from tests.ingest.ingest_support import (
    BLOCK_890448,
    MEMPOOL,
    TX01,
    TX02,
    as_unconfirmed,
    mempool_frame,
    whales_277647,
)
from tests.support.processes import wait_until, write_recording

HASH_277647 = "0000000000000000054a714e580b16c583701712ab91060e92dbde6eb1e052a8"


def load_frame(name: str) -> dict:
    return json.loads((MEMPOOL / f"{name}.json").read_text())


def ingest(path, seconds: float = 5.0) -> None:
    call_command("ingest_mempool", source=f"replay:{path}?speed=0", max_seconds=seconds)


def test_replay_of_block_277647_lands_in_postgres(tmp_path, celery_worker_process):
    whales = [as_unconfirmed(t) for t in whales_277647()]
    recording = write_recording(
        tmp_path / "277647.jsonl",
        [
            (0.0, mempool_frame(1, added=whales)),
            (1.0, mempool_frame(2, mined=[t["txid"] for t in whales])),
            (1.1, {"block": {"id": HASH_277647, "height": 277647, "timestamp": 1388400000}}),
        ],
    )
    ingest(recording)
    wait_until(lambda: WhaleEvent.objects.filter(kind=EventKind.CONFIRMED).count() == 3)

    assert WhaleTransaction.objects.count() == 3
    assert set(WhaleTransaction.objects.values_list("status", flat=True)) == {"confirmed"}
    zero_fee = WhaleTransaction.objects.get(
        txid="5143ba5524d21b646de5cd5a1ab6ee7b7823a59c87a347d3b5339e9f977e7dcd"
    )
    assert (zero_fee.value, zero_fee.fee, zero_fee.confirmed_height) == (92_700_000_000, 0, 277647)
    assert zero_fee.predictions.get().urgency == 0.0
    assert Block.objects.get().hash == HASH_277647
    # Exactly one row per event: seen and confirmed for each whale.
    assert (
        sorted(WhaleEvent.objects.values_list("kind", flat=True))
        == ["confirmed"] * 3 + ["seen"] * 3
    )


def test_real_rbf_sequence_ends_as_one_alert_chain(tmp_path, settings, celery_worker_process):
    # The details_rbf transactions move about 0.0005 BTC: lower the floor to watch them.
    settings.WHALE_MIN_BTC = 0.0004
    tx01 = json.loads((MEMPOOL / "tx01_api_cached.json").read_text())
    tx02 = json.loads((MEMPOOL / "tx02_api_tx.json").read_text())
    recording = write_recording(
        tmp_path / "rbf.jsonl",
        [
            (0.0, load_frame("tx01_ws_blocks_01")),
            (0.1, mempool_frame(1, added=[tx01])),
            (
                0.2,
                mempool_frame(
                    2, added=[tx02], removed=[TX01], replaced=[{"replaced": TX01, "by": tx02}]
                ),
            ),
            (0.3, load_frame("tx01_ws_tx_replaced")),
            (0.4, load_frame("tx02_ws_tx_position")),
            (0.5, load_frame("tx02_ws_mempool_blocks_01")),
            (0.6, load_frame("tx02_ws_block")),
        ],
    )
    ingest(recording)
    wait_until(lambda: WhaleEvent.objects.filter(kind=EventKind.CONFIRMED).exists())

    first = WhaleTransaction.objects.get(txid=TX01)
    replacement = WhaleTransaction.objects.get(txid=TX02)
    assert first.status == WhaleStatus.REPLACED and first.replaced_by == replacement
    assert replacement.chain == first
    assert replacement.status == WhaleStatus.CONFIRMED
    assert (replacement.confirmed_height, replacement.confirmed_hash) == (890448, BLOCK_890448)
    # Seen at tip 890447, mined in 890448: one block waited.
    assert replacement.blocks_waited == 1
    chain = list(first.chain_events.order_by("sequence").values_list("kind", "whale__txid"))
    assert chain == [("seen", TX01), ("replaced", TX02), ("confirmed", TX02)]
    resolved = replacement.predictions.get()
    assert (resolved.predicted_blocks, resolved.actual_blocks, resolved.hit) == (1, 1, True)
    assert first.predictions.get().outcome == "replaced"


@pytest.mark.django_db
def test_bad_source_is_a_clear_error():
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="unknown source"):
        call_command("ingest_mempool", source="ftp://example.org", max_seconds=1)
    with pytest.raises(CommandError, match="max-seconds"):
        call_command("ingest_mempool", source="synthetic:", max_seconds=-1)
