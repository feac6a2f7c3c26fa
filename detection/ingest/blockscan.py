"""Block scans: every whale of a block, seen in the mempool before or not (issue 13).

For one block the scanner asks the source's own REST API (``detection.ingest.rest``), in this
order, falling back when an endpoint is missing (404/405/501) or its answer is unusable:

1. ``GET /api/v1/block/<hash>/summary`` (mempool.space): ``[{txid, value, ...}]``, ``value`` the
   exact output sum in sats; one request.
2. ``GET /api/block/<hash>/raw``: the block's bytes, parsed and checked (header hash = the hash
   asked for, merkle root) by ``detection.ingest.blockparse``; one request.
3. ``GET /api/block/<hash>/txids`` plus only the ``/api/block/<hash>/txs/<start>`` pages (25 txs
   each, Esplora JSON with prevouts) holding a txid whose value we do not know already: the txs the
   caller saw in its own mempool view (``mined_known``) need no page.

Then ``GET /api/tx/<txid>`` only for whales the caller has not seen (``is_known``), for their
prevouts (input addresses, fee). When that fetch fails after a raw-block scan, the whale is
still recorded from the block's own bytes with its inputs unknown (``prevout: null``), never
guessed; after a summary scan (which has no outputs) the scan fails and is retried later.

A block therefore costs 1 request (summary or raw) + 1 per unseen whale. Nothing here blocks
the event loop: HTTP runs in worker threads, parsing a 1 MB block takes tens of milliseconds
(``bench/block_scan.py``) and runs in a worker thread too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import orjson

from detection.domain.addresses import script_address
from detection.ingest.blockparse import BlockParseError, parse_block
from detection.ingest.protocol import BlockInfo
from detection.ingest.rest import RestClient, RestError, fetch_tx, is_hex_id
from detection.ingest.watch import EMPTY as EMPTY_WATCH_SET
from detection.ingest.watch import WatchSet

log = logging.getLogger(__name__)

TXS_PAGE = 25  # Esplora's page size for /block/<hash>/txs/<start>
MAX_PAGES = 400  # a 4 MWU block of the smallest txs is ~16,000 txs = 640 pages: not a handful


class BlockScanFailed(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(slots=True)
class BlockScan:
    block_hash: str
    method: str  # "summary" | "raw" | "txids"
    # Whales the caller had not seen: txid -> Esplora tx (prevouts when fetched, else null).
    unseen: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Whales the caller already knew (pending or confirmed): to confirm, nothing to fetch.
    known: list[str] = field(default_factory=list)
    requests: int = 0
    without_prevouts: int = 0  # unseen whales recorded from the block alone
    txids: list[str] = field(default_factory=list)  # every tx of the block


def _output_sum(tx: dict[str, Any]) -> int | None:
    vout = tx.get("vout")
    if type(vout) is not list:
        return None
    total = 0
    for out in vout:
        value = out.get("value") if type(out) is dict else None
        if type(value) is not int or value < 0:
            return None
        total += value
    return total


class BlockScanner:
    def __init__(self, rest: RestClient, whale_min_sats: int) -> None:
        self.rest = rest
        self.whale_min_sats = whale_min_sats
        # Watchlists (issue 21): txs paying a watched address are found like whales.
        self.watch_set: WatchSet = EMPTY_WATCH_SET

    async def scan(
        self,
        block_hash: str,
        *,
        is_known: Callable[[str], bool],
        mined_known: Collection[str] = (),
    ) -> BlockScan:
        """Find every whale of one block. Raises BlockScanFailed when no method worked."""
        if not is_hex_id(block_hash):
            raise BlockScanFailed("bad_hash")
        before = sum(self.rest.requests.values())
        reasons = []
        methods = (self._by_summary, self._by_raw, self._by_txids)
        if self.watch_set:  # a summary has no addresses: watched payments need the outputs
            methods = (self._by_raw, self._by_txids, self._by_summary)
        for method in methods:
            try:
                scan = await method(block_hash, is_known, mined_known)
            except RestError as exc:
                reasons.append(exc.reason)
                continue
            except BlockScanFailed as exc:
                reasons.append(exc.reason)
                continue
            scan.requests = sum(self.rest.requests.values()) - before
            return scan
        raise BlockScanFailed("/".join(reasons))

    # -- methods ----------------------------------------------------------------------------

    async def _by_summary(self, block_hash, is_known, mined_known) -> BlockScan:
        endpoint = "block_summary"
        body = await self.rest.get(endpoint, f"/v1/block/{block_hash}/summary")
        try:
            entries = orjson.loads(body)
        except orjson.JSONDecodeError:
            self.rest.count_failure(endpoint, "bad_json")
            raise BlockScanFailed("bad_json") from None
        candidates: list[str] = []
        if type(entries) is not list or not entries:
            self.rest.count_failure(endpoint, "bad_shape")
            raise BlockScanFailed("bad_shape")
        for entry in entries[1:]:  # the first is the coinbase
            txid = entry.get("txid") if type(entry) is dict else None
            value = entry.get("value") if type(entry) is dict else None
            if not is_hex_id(txid) or type(value) is not int or value < 0:
                self.rest.count_failure(endpoint, "bad_shape")
                raise BlockScanFailed("bad_shape")
            if value >= self.whale_min_sats:
                candidates.append(txid)
        scan = BlockScan(block_hash, "summary", txids=[entry["txid"] for entry in entries])
        for txid in candidates:
            if is_known(txid):
                scan.known.append(txid)
                continue
            try:
                tx = await fetch_tx(self.rest, txid)
            except RestError as exc:
                # A summary has no outputs to fall back on: the whole scan is retried later.
                raise BlockScanFailed(f"tx_{exc.reason}") from None
            if not self._belongs(tx, block_hash):
                self.rest.count_failure("tx", "other_block")
                raise BlockScanFailed("tx_other_block")
            scan.unseen[txid] = tx
        return scan

    async def _by_raw(self, block_hash, is_known, mined_known) -> BlockScan:
        endpoint = "block_raw"
        body = await self.rest.get(
            endpoint, f"/block/{block_hash}/raw", accept="application/octet-stream"
        )
        try:
            block = await asyncio.to_thread(parse_block, body, block_hash)
        except BlockParseError as exc:
            self.rest.count_failure(endpoint, exc.reason, exc.detail or None)
            raise BlockScanFailed(exc.reason) from None
        scan = BlockScan(block_hash, "raw", txids=[tx.txid for tx in block.txs])
        for tx in self._raw_candidates(block):
            if is_known(tx.txid):
                scan.known.append(tx.txid)
                continue
            try:
                full = await fetch_tx(self.rest, tx.txid)
            except RestError:
                full = None
            if full is not None and self._belongs(full, block_hash):
                scan.unseen[tx.txid] = full
            else:
                # The block's own outputs, inputs unknown: never guessed.
                scan.unseen[tx.txid] = tx.to_esplora()
                scan.without_prevouts += 1
        return scan

    async def _by_txids(self, block_hash, is_known, mined_known) -> BlockScan:
        endpoint = "block_txids"
        body = await self.rest.get(endpoint, f"/block/{block_hash}/txids")
        try:
            txids = orjson.loads(body)
        except orjson.JSONDecodeError:
            self.rest.count_failure(endpoint, "bad_json")
            raise BlockScanFailed("bad_json") from None
        if type(txids) is not list or not txids or not all(is_hex_id(t) for t in txids):
            self.rest.count_failure(endpoint, "bad_shape")
            raise BlockScanFailed("bad_shape")
        scan = BlockScan(block_hash, "txids", txids=txids)
        known_values = set(mined_known)
        starts: set[int] = set()
        for index, txid in enumerate(txids):
            if index == 0:
                continue
            if is_known(txid):
                scan.known.append(txid)
            elif txid not in known_values:
                starts.add(index - index % TXS_PAGE)
        if len(starts) > MAX_PAGES:
            self.rest.count_failure(endpoint, "too_many_pages", len(starts))
            raise BlockScanFailed("too_many_pages")
        for start in sorted(starts):
            page_endpoint = "block_txs"
            body = await self.rest.get(page_endpoint, f"/block/{block_hash}/txs/{start}")
            try:
                page = orjson.loads(body)
            except orjson.JSONDecodeError:
                self.rest.count_failure(page_endpoint, "bad_json")
                raise BlockScanFailed("bad_json") from None
            expected = txids[start : start + TXS_PAGE]
            if (
                type(page) is not list
                or [tx.get("txid") if type(tx) is dict else None for tx in page] != expected
            ):
                self.rest.count_failure(page_endpoint, "wrong_page")
                raise BlockScanFailed("wrong_page")
            for tx in page:
                total = _output_sum(tx)
                if total is None:
                    self.rest.count_failure(page_endpoint, "bad_shape")
                    raise BlockScanFailed("bad_shape")
                txid = tx["txid"]
                wanted = total >= self.whale_min_sats or (
                    self.watch_set and self.watch_set.touches_esplora(tx)
                )
                if wanted and txid != txids[0] and not is_known(txid):
                    scan.unseen[txid] = tx
        return scan

    def _raw_candidates(self, block) -> list:
        """The block's whales, and (issue 21) the txs paying a watched address: a raw block has
        no prevouts, so a watched address that only spends is not seen here."""
        watched = self.watch_set.addresses
        if not watched:
            return block.whales(self.whale_min_sats)
        floor = self.whale_min_sats
        return [
            tx
            for tx in block.txs[1:]
            if tx.output_sum >= floor
            or any(script_address(script)[1] in watched for _value, script in tx.outputs)
        ]

    @staticmethod
    def _belongs(tx: dict[str, Any], block_hash: str) -> bool:
        status = tx.get("status")
        # A tx whose status names another block (or none) is not this block's: the server has
        # moved on (a reorg) or answered wrongly; trusting it could confirm it in the wrong place.
        return type(status) is dict and status.get("block_hash") == block_hash


# -- following the chain: which blocks to scan, in order, with retries and catch-up -----------


@dataclass(slots=True)
class ScanStats:
    blocks_scanned: int = 0
    block_scan_failures: int = 0
    block_scans_abandoned: int = 0
    catch_up_blocks: int = 0  # blocks scanned because they were missed (not announced live)
    catch_up_gap_blocks: int = 0  # missed blocks beyond the catch-up bound: never scanned
    block_only_whales: int = 0
    unseen_without_prevouts: int = 0
    last_scan_requests: int | None = None
    reorgs_walked: int = 0
    last_scanned_height: int | None = None
    last_scanned_hash: str | None = None


class BlockFollower:
    """Scans every block after the last fully scanned one, oldest first, off the reader.

    The reader calls ``offer()`` (cheap, synchronous) with the blocks its frames named; the
    ``run()`` task scans them one at a time through ``BlockScanner`` and hands the results to
    ``apply(block, scan)`` on the event loop. Blocks missed while disconnected or stopped (the
    heights between the last scanned block and the first one offered) are found with
    ``/api/block-height/<h>`` and ``/api/block/<hash>``, at most ``catch_up_max`` of them (the
    newest); older ones are logged and counted as a gap. A failed scan is retried with backoff
    (``retry_base`` doubling to ``retry_cap``), up to ``max_attempts``, then abandoned (counted):
    the last scanned position only moves past a block that was scanned.

    Without a last scanned block (a first start), the blocks the server lists on connecting
    were mined before we ever watched: they set the position and are not scanned.
    """

    def __init__(
        self,
        scanner: BlockScanner,
        *,
        is_known: Callable[[str], bool],
        apply: Callable[[BlockInfo, BlockScan], None],
        on_scanned: Callable[[BlockInfo], Any] | None = None,
        last_scanned: tuple[int, str] | None = None,
        catch_up_max: int = 12,
        retry_base: float = 2.0,
        retry_cap: float = 60.0,
        max_attempts: int = 8,
        hash_at: Callable[[int], str | None] | None = None,
        orphan: Callable[[int, str], None] | None = None,
    ) -> None:
        self.scanner = scanner
        self.is_known = is_known
        self.apply = apply
        self.on_scanned = on_scanned
        self.catch_up_max = catch_up_max
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.max_attempts = max_attempts
        self.hash_at = hash_at or (lambda _height: None)
        self.orphan = orphan
        self._walks: list[tuple[int, str, int]] = []  # (height, hash, failed tries)
        self.stats = ScanStats()
        if last_scanned is not None:
            self.stats.last_scanned_height, self.stats.last_scanned_hash = last_scanned
        self._queue: dict[int, BlockInfo] = {}  # height -> block to scan
        self._mined_known: dict[str, frozenset[str]] = {}
        self._wake = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()

    @property
    def last_scanned(self) -> tuple[int, str] | None:
        if self.stats.last_scanned_height is None or self.stats.last_scanned_hash is None:
            return None
        return self.stats.last_scanned_height, self.stats.last_scanned_hash

    @property
    def queued(self) -> int:
        return len(self._queue)

    def offer(
        self,
        blocks: list[tuple[BlockInfo, bool]],
        mined_known: dict[str, frozenset[str]] | None = None,
    ) -> None:
        """Blocks named by frames, each with whether a live ``block`` message announced it
        (rather than the ``blocks`` list a connection starts with). Cheap; never blocks."""
        if mined_known:
            self._mined_known.update(mined_known)
            while len(self._mined_known) > 32:
                del self._mined_known[next(iter(self._mined_known))]
        last = self.stats.last_scanned_height
        if last is None:
            announced = [block.height for block, live in blocks if live]
            if not announced:
                listed = [block for block, _live in blocks]
                if listed:
                    tip = max(listed, key=lambda b: b.height)
                    self._set_position(tip.height, tip.hash)
                return
            last = min(announced) - 1
            self._set_position(last, "")
        for block, _live in blocks:
            if block.height > last and is_hex_id(block.hash):
                self._queue[block.height] = block
        if self._queue:
            self.idle.clear()
            self._wake.set()

    def _set_position(self, height: int, block_hash: str) -> None:
        self.stats.last_scanned_height = height
        self.stats.last_scanned_hash = block_hash or None

    def walk_back(self, starts: list[tuple[int, str]]) -> None:
        """Blocks of a new branch (found through previousblockhash): check each with the server
        and walk back until the chains meet, orphaning ours on the way, and rescan the branch."""
        self._walks.extend((height, block_hash, 0) for height, block_hash in starts)
        self.idle.clear()
        self._wake.set()

    async def run(self) -> None:
        while True:
            if self._walks:
                height, block_hash, tries = self._walks.pop(0)
                await self._walk_back(height, block_hash, tries)
                continue
            if not self._queue:
                self.idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            last = self.stats.last_scanned_height
            if last is not None:
                self._bound_catch_up(last)
                last = self.stats.last_scanned_height
            height = min(self._queue)
            block = self._queue[height]
            if last is not None and height > last + 1:
                await self._catch_up(last, height)
                continue
            await self._scan_with_retries(block)
            if self._queue.get(height) is block:
                del self._queue[height]

    async def _walk_back(self, height: int, block_hash: str, tries: int = 0) -> None:
        for _step in range(max(1, self.catch_up_max)):
            info = await self._block_info(block_hash, height)
            if info is None:
                self.stats.block_scan_failures += 1
                if tries + 1 >= self.max_attempts:
                    self.stats.block_scans_abandoned += 1
                    log.error("reorg walk-back at %d %s abandoned after %d tries",
                              height, block_hash, tries + 1)  # fmt: skip
                    return
                await asyncio.sleep(min(self.retry_cap, self.retry_base * 2**tries))
                self._walks.insert(0, (height, block_hash, tries + 1))
                return
            # The server vouches for this block at this height: ours there is orphaned.
            if self.hash_at(height) != block_hash and self.orphan is not None:
                self.orphan(height, block_hash)
            self._queue[height] = info  # the new branch is scanned again
            parent = self.hash_at(height - 1)
            if parent is None or info.previous_hash is None or parent == info.previous_hash:
                break  # the chains meet here (or we hold nothing older to compare)
            height, block_hash = height - 1, info.previous_hash
        else:
            self.stats.catch_up_gap_blocks += 1  # deeper than we walk: counted, logged
            log.error("reorg deeper than %d blocks below %d; not walked further",
                      self.catch_up_max, height)  # fmt: skip
        last = self.stats.last_scanned_height
        if last is not None and last >= height:
            self._set_position(height - 1, self.hash_at(height - 1) or "")
        self.stats.reorgs_walked += 1

    async def _persist(self, block: BlockInfo) -> None:
        if self.on_scanned is None:
            return
        try:
            # A database write: in a worker thread, never on the loop the reader runs on.
            await asyncio.to_thread(self.on_scanned, block)
        except Exception:
            log.exception("could not save the last scanned block %d %s", block.height, block.hash)

    def _bound_catch_up(self, last: int) -> None:
        """At most ``catch_up_max`` missed blocks below the newest one are scanned; older ones
        are given up: logged, counted, and the position moves past them."""
        tip = max(self._queue)
        missed = tip - last - 1
        if missed <= self.catch_up_max:
            return
        skipped = missed - self.catch_up_max
        self.stats.catch_up_gap_blocks += skipped
        log.error(
            "block scan: %d blocks (%d-%d) missed beyond the catch-up bound of %d; "
            "their whales are not scanned",
            skipped,
            last + 1,
            last + skipped,
            self.catch_up_max,
        )
        for height in [h for h in self._queue if h <= last + skipped]:
            del self._queue[height]
        self._set_position(last + skipped, "")

    async def _catch_up(self, last: int, first_offered: int) -> None:
        """Queue the blocks between the last scanned one and the first offered."""
        missed = list(range(last + 1, first_offered))
        found: dict[int, BlockInfo] = {}
        for height in missed:
            block = await self._block_at(height)
            if block is None:
                break
            found[height] = block
        if len(found) < len(missed):
            # Try again later; meanwhile nothing newer is scanned (the position stays honest).
            self.stats.block_scan_failures += 1
            await asyncio.sleep(self.retry_base)
            return
        self.stats.catch_up_blocks += len(found)
        self._queue.update(found)

    async def _block_at(self, height: int) -> BlockInfo | None:
        rest = self.scanner.rest
        try:
            block_hash = (await rest.get("block_height", f"/block-height/{height}")).decode()
            block_hash = block_hash.strip()
            if not is_hex_id(block_hash):
                rest.count_failure("block_height", "bad_shape")
                return None
        except (RestError, UnicodeDecodeError):
            return None
        return await self._block_info(block_hash, height)

    async def _block_info(self, block_hash: str, height: int) -> BlockInfo | None:
        """``GET /api/block/<hash>``, checked to be that block at that height."""
        rest = self.scanner.rest
        try:
            info = orjson.loads(await rest.get("block", f"/block/{block_hash}"))
        except RestError:
            return None
        except orjson.JSONDecodeError:
            rest.count_failure("block", "bad_json")
            return None
        if type(info) is not dict or info.get("id") != block_hash or info.get("height") != height:
            rest.count_failure("block", "wrong_block")
            return None
        timestamp = info.get("timestamp")
        previous = info.get("previousblockhash")
        return BlockInfo(
            height,
            block_hash,
            timestamp if type(timestamp) is int else None,
            previous if is_hex_id(previous) else None,
        )

    async def _scan_with_retries(self, block: BlockInfo) -> None:
        for attempt in range(self.max_attempts):
            try:
                scan = await self.scanner.scan(
                    block.hash,
                    is_known=self.is_known,
                    mined_known=self._mined_known.get(block.hash, frozenset()),
                )
            except BlockScanFailed as exc:
                self.stats.block_scan_failures += 1
                delay = min(self.retry_cap, self.retry_base * 2**attempt)
                log.warning(
                    "block scan of %d %s failed (%s); retry in %.1f s",
                    block.height,
                    block.hash,
                    exc.reason,
                    delay,
                )
                await asyncio.sleep(delay)
                if self._queue.get(block.height) is not block:
                    return  # replaced by another block at that height (a reorg): scan that
                continue
            self.stats.blocks_scanned += 1
            self.stats.last_scan_requests = scan.requests
            self.stats.block_only_whales += len(scan.unseen)
            self.stats.unseen_without_prevouts += scan.without_prevouts
            self.apply(block, scan)
            self._set_position(block.height, block.hash)
            await self._persist(block)
            return
        self.stats.block_scans_abandoned += 1
        log.error("block scan of %d %s abandoned after %d tries", block.height, block.hash,
                  self.max_attempts)  # fmt: skip
        self._set_position(block.height, block.hash)
