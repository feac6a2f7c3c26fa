"""Honest resync: what became of the pending whales while we were not listening (issue 13).

After every (re)connect and every sequence gap, ``Resyncer.trigger()`` notes the whales pending
at that moment. After ``grace_s`` seconds (the ``tracked-txs`` answer and the catch-up block scans
come first), each of them still pending and not vouched for by a ``tracked-txs`` answer (still
in the server's mempool, or replaced) is checked over REST, one at a time:

- ``GET /api/tx/<txid>/status``: ``confirmed`` -> confirmed at the returned height and hash;
  ``confirmed: false`` -> still in the mempool, nothing to do;
- 404 -> ``GET /api/tx/<prev>/outspend/<vout>`` of its first input: spent by another tx ->
  replaced by it (and confirmed too when that tx is mined); unspent -> dropped.

Anything else (timeouts, 5xx, garbage) leaves the whale pending and is counted; the next
trigger checks it again. Nothing is guessed: a whale whose first input is unknown (restored
without its inputs) and that the server no longer has stays pending until it expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson

from detection.ingest.lifecycle import Event, WhaleTracker
from detection.ingest.protocol import BlockInfo
from detection.ingest.rest import RestClient, RestError, fetch_tx, is_hex_id

log = logging.getLogger(__name__)

MAX_CHECKS_PER_RESYNC = 500  # a handful of requests per whale; more pending than this is odd


def _block_of(status: Any) -> BlockInfo | None:
    if type(status) is not dict or status.get("confirmed") is not True:
        return None
    height, block_hash, when = (
        status.get("block_height"),
        status.get("block_hash"),
        status.get("block_time"),
    )
    if type(height) is not int or height < 0 or not is_hex_id(block_hash):
        return None
    return BlockInfo(height, block_hash, when if type(when) is int else None, None)


class Resyncer:
    def __init__(
        self,
        rest: RestClient,
        tracker: WhaleTracker,
        *,
        enqueue: Callable[[list[Event]], None],
        first_input: Callable[[str], tuple[str, int] | None],
        convert: Callable[[dict[str, Any]], Any],
        grace_s: float = 5.0,
        scans_idle: asyncio.Event | None = None,
    ) -> None:
        self.rest = rest
        self.tracker = tracker
        self.enqueue = enqueue
        self.first_input = first_input
        self.convert = convert  # Esplora tx -> WhaleTx (or raises)
        self.grace_s = grace_s
        self.scans_idle = scans_idle
        self.stats: Counter[str] = Counter()
        self._snapshot: set[str] = set()
        self._wake = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()

    def trigger(self, why: str) -> None:
        """A (re)connect or a sequence gap: check the whales pending now (cheap; never blocks)."""
        self.stats[f"trigger_{why}"] += 1
        self.tracker.resync_mentions.clear()
        self._snapshot.update(self.tracker.pending)
        self.idle.clear()
        self._wake.set()

    async def run(self) -> None:
        while True:
            if not self._snapshot:
                self.idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            await asyncio.sleep(self.grace_s)
            if self.scans_idle is not None:
                # Let the catch-up scans confirm what they can first (bounded wait).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.scans_idle.wait(), timeout=60.0)
            snapshot, self._snapshot = self._snapshot, set()
            mentioned = self.tracker.resync_mentions
            due = [t for t in snapshot if t in self.tracker.pending and t not in mentioned]
            if len(due) > MAX_CHECKS_PER_RESYNC:
                self.stats["not_checked"] += len(due) - MAX_CHECKS_PER_RESYNC
                due = due[:MAX_CHECKS_PER_RESYNC]
            for txid in due:
                if txid not in self.tracker.pending or txid in self.tracker.resync_mentions:
                    continue  # resolved meanwhile by a frame
                try:
                    outcome = await self._check(txid)
                except Exception:  # noqa: BLE001 - one whale's check must not stop the others
                    outcome = "error"
                    log.exception("resync check of %s failed", txid)
                self.stats[outcome] += 1

    async def _check(self, txid: str) -> str:
        self.stats["checked"] += 1
        try:
            body = await self.rest.get("tx_status", f"/tx/{txid}/status")
        except RestError as exc:
            if exc.reason != "http_404":
                return "unresolved"
            return await self._check_outspend(txid)
        try:
            status = orjson.loads(body)
        except orjson.JSONDecodeError:
            self.rest.count_failure("tx_status", "bad_json")
            return "unresolved"
        if type(status) is not dict or type(status.get("confirmed")) is not bool:
            self.rest.count_failure("tx_status", "bad_shape")
            return "unresolved"
        if status["confirmed"] is False:
            return "still_pending"
        block = _block_of(status)
        if block is None:
            self.rest.count_failure("tx_status", "bad_shape")
            return "unresolved"
        self.enqueue(self.tracker.resolve_confirmed(txid, block, _now()))
        return "confirmed"

    async def _check_outspend(self, txid: str) -> str:
        outpoint = self.first_input(txid)
        if outpoint is None:
            return "unknown_inputs"
        prev, vout = outpoint
        if not is_hex_id(prev):
            return "unknown_inputs"
        try:
            body = await self.rest.get("outspend", f"/tx/{prev}/outspend/{int(vout)}")
            outspend = orjson.loads(body)
        except RestError:
            return "unresolved"
        except orjson.JSONDecodeError:
            self.rest.count_failure("outspend", "bad_json")
            return "unresolved"
        if type(outspend) is not dict or type(outspend.get("spent")) is not bool:
            self.rest.count_failure("outspend", "bad_shape")
            return "unresolved"
        if not outspend["spent"]:
            self.enqueue(self.tracker.resolve_dropped(txid, _now()))
            return "dropped"
        spender = outspend.get("txid")
        if not is_hex_id(spender):
            self.rest.count_failure("outspend", "bad_shape")
            return "unresolved"
        if spender == txid:
            # Its own input is spent by itself, yet the server has no status for it: odd.
            return "unresolved"
        whale = None
        try:
            whale = self.convert(await fetch_tx(self.rest, spender))
        except (RestError, KeyError, TypeError, ValueError):
            whale = None  # the "replaced" event goes out without the transaction
        now = _now()
        self.enqueue(self.tracker.resolve_replaced(txid, spender, whale, now))
        block = _block_of(outspend.get("status"))
        if block is not None:
            self.enqueue(self.tracker.resolve_confirmed(spender, block, now))
        return "replaced"


def _now() -> float:
    return time.time()
