"""kill -9 the ingest while whales are pending, start it again: they must still reach their end.

A new ingest process starts with an empty tracker. Without reloading the whales the database
holds as pending, a whale seen before the crash is never confirmed (nor replaced, nor dropped)
and stays "pending" for ever; the chaos drill (bench/chaos.py) found 24 such whales after one
kill -9 of the ingest, and then that whales whose source-given firstSeen lay weeks back were
skipped by the reload.
"""

from __future__ import annotations

import secrets
import signal

import pytest

from detection.models import EventKind, WhaleEvent, WhaleStatus, WhaleTransaction
from tests.ingest.ingest_support import as_unconfirmed, mempool_frame, whales_277647
from tests.support.processes import (
    kill,
    start_ingest,
    start_worker,
    subprocess_env,
    wait_until,
    write_recording,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

HASH_277647 = "0000000000000000054a714e580b16c583701712ab91060e92dbde6eb1e052a8"
BLOCK = {"id": HASH_277647, "height": 277647, "timestamp": 1388400000}


def test_whales_pending_before_a_crash_are_confirmed_after_the_restart(tmp_path):
    whales = []
    for template in whales_277647():
        tx = as_unconfirmed(template)
        tx["txid"] = secrets.token_hex(32)
        tx["firstSeen"] = 1_600_000_000  # the source's clock, not ours (synthetic, replayed)
        whales.append(tx)
    # One source for both runs (whales are followed per source); the second run's recording
    # replaces the first under the same name, as a live feed goes on where it was.
    source = tmp_path / "feed.jsonl"
    write_recording(
        source,
        [(0.0, mempool_frame(1, added=whales)), (60.0, mempool_frame(2))],  # then stays open
    )
    env = subprocess_env(WHALE_VAR_DIR=str(tmp_path / "var"))
    worker = start_worker(env, tmp_path / "worker.log", name="faults-restart")
    try:
        first = start_ingest(env, tmp_path / "ingest1.log", f"replay:{source}?speed=1")
        try:
            wait_until(lambda: WhaleEvent.objects.filter(kind=EventKind.SEEN).count() == 3, 30)
        finally:
            kill(first, signal.SIGKILL)  # a crash: no position file, nothing flushed

        write_recording(
            source,
            [
                (0.5, mempool_frame(3, mined=[tx["txid"] for tx in whales])),
                (0.6, {"block": BLOCK}),
            ],
        )
        second = start_ingest(env, tmp_path / "ingest2.log", f"replay:{source}?speed=1")
        try:
            assert second.wait(timeout=30) == 0
            wait_until(lambda: WhaleEvent.objects.filter(kind=EventKind.CONFIRMED).count() == 3, 20)
        finally:
            kill(second)
    finally:
        kill(worker, signal.SIGTERM)
    log = (tmp_path / "ingest2.log").read_text(errors="replace")
    assert "following 3 whales still pending from before" in log, log
    for whale in WhaleTransaction.objects.all():
        assert whale.status == WhaleStatus.CONFIRMED
        assert whale.confirmed_height == 277647
        kinds = sorted(whale.events.values_list("kind", "sequence"))
        assert kinds == [("confirmed", 2), ("seen", 1)]  # the chain's sequence goes on
