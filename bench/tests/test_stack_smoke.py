"""bench/stack.py keeps working: the whole stack as real processes (private Redis, Daphne, Celery
worker and beat, the ingest on its live WebSocket client, the mempool.space-protocol feed, the
webhook receiver, a dashboard socket) carries a whale from the feed to PostgreSQL, to every
subscribed webhook endpoint and to the dashboard, each exactly once."""

import shutil
import time

import pytest

from bench.stack import Stack

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed"),
]


def test_one_whale_reaches_everything_exactly_once(tmp_path):
    stack = Stack(
        workdir=tmp_path,
        tx_per_s=3.0,
        whale_every_s=1.0,
        block_interval=100_000.0,
        subscribers=1,
        quiet=True,
    )
    with stack:
        stack.wait_for_whales(1, timeout=20)
        first = min(
            (w["added_at"], txid)
            for txid, w in stack.emitted_whales().items()
            if w["sent"] and w["role"] == "whale"
        )[1]
        deadline = time.time() + 10
        while time.time() < deadline:
            hooks = [d for d in stack.deliveries() if d["txid"] == first and d["kind"] == "seen"]
            pushes = [
                m
                for m in stack.dashboard_messages()
                if m["type"] == "whale.event" and m["kind"] == "seen" and m["txid"] == first
            ]
            if hooks and pushes:
                break
            time.sleep(0.1)
        rows = stack.psql(
            "SELECT w.status, count(e.id) FROM detection_whaletransaction w "
            "JOIN detection_whaleevent e ON e.whale_id = w.id AND e.kind = 'seen' "
            "WHERE w.txid = %s GROUP BY w.status",
            (first,),
        )
        time.sleep(1.0)  # a duplicate would have arrived by now
        hooks = [d for d in stack.deliveries() if d["txid"] == first and d["kind"] == "seen"]
        pushes = [
            m
            for m in stack.dashboard_messages()
            if m["type"] == "whale.event" and m["kind"] == "seen" and m["txid"] == first
        ]
        check = stack.check(settle=5)

    assert rows == [("pending", 1)]
    assert len(hooks) == 1, hooks
    assert hooks[0]["verified"] and hooks[0]["status"] == 204
    assert hooks[0]["path"] == "/hook/0"
    assert len(pushes) == 1, pushes
    assert check.ok, check.problems
