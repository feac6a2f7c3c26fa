"""Helpers for the ingest tests: real fixture files, a real local WebSocket server speaking the
mempool.space protocol, and a runner driven frame by frame. Pure Python; nothing here touches
Django or the network beyond 127.0.0.1. (Not named conftest so that test modules can import it
under a name no other test folder uses.)"""

from __future__ import annotations

import asyncio
import bz2
import contextlib
import functools
import json
import socket
import struct
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Response

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MEMPOOL = FIXTURES / "mempool"
BLOCKS = FIXTURES / "blocks"
GBT = FIXTURES / "gbt"

TX01 = "242f3fff9ca7d5aea7a7a57d886f3fa7329e24fac948598a991b3a3dd631cd29"
TX02 = "b6a53d8a8025c0c5b194345925a99741b645cae0b1f180f0613273029f2bf698"
BLOCK_890448 = "000000000000000000019bfe551da67e0d93dda4b355d16f1fdb4031ba7e5d61"


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def whales_277647() -> list[dict[str, Any]]:
    return load(BLOCKS / "whales_block_277647.esplora_txs.json")


def whales_702861() -> list[dict[str, Any]]:
    return load(BLOCKS / "whales_block_702861.esplora_txs_no_prevouts.json")


BLOCK_277647 = "0000000000000000054a714e580b16c583701712ab91060e92dbde6eb1e052a8"
BLOCK_702861 = "000000000000000000000c835b2adcaedc20fdf6ee440009c249452c726dafae"


@functools.cache
def raw_block_277647() -> bytes:
    """The real block 277647's bytes (btcd's file is in blk*.dat framing: magic + length)."""
    framed = bz2.decompress((BLOCKS / "btcd_block_277647.dat.bz2").read_bytes())
    assert framed[:4] == bytes.fromhex("f9beb4d9")
    length = int.from_bytes(framed[4:8], "little")
    assert len(framed) == 8 + length
    return framed[8:]


@functools.cache
def raw_block_702861() -> bytes:
    return bz2.decompress((BLOCKS / "mainnet_block_702861.raw.bz2").read_bytes())


@functools.cache
def esplora_txs_277647() -> list[dict[str, Any]]:
    """All 213 txs of block 277647, Esplora JSON with prevouts (coinbase first)."""
    return json.loads(bz2.decompress((BLOCKS / "block_277647.esplora_txs.json.bz2").read_bytes()))


def txids_277647() -> list[str]:
    return load(BLOCKS / "block_277647.txids.json")


def make_block(previous_hash: str, txs: list[bytes], time: int, nonce: int = 0) -> bytes:
    """A block (not mined: no proof of work) of real serialized txs on ``previous_hash``, with
    its merkle root right, for reorg tests: only two real consecutive blocks are at hand."""
    from detection.ingest.blockparse import merkle_root, serialized_transactions

    ids = []
    for raw in txs:
        fake = bytes(80) + bytes([1]) + raw
        ids.append(serialized_transactions(fake)[0][1].txid)
    header = (
        struct.pack("<i", 2)
        + bytes.fromhex(previous_hash)[::-1]
        + bytes.fromhex(merkle_root(ids))[::-1]
        + struct.pack("<III", time, 0x1D00FFFF, nonce)
    )
    assert len(txs) < 0xFD
    return header + bytes([len(txs)]) + b"".join(txs)


def next_block_of_whales_702861() -> bytes:
    """A stand-in for block 277648 (none is at hand): block 702861's real coinbase and four
    whales, on top of the real block 277647 (header made here, merkle root right)."""
    from detection.ingest.blockparse import serialized_transactions

    wanted = {tx["txid"] for tx in whales_702861()}
    pairs = serialized_transactions(raw_block_702861())
    members = [raw for raw, tx in pairs[1:] if tx.txid in wanted]
    return make_block(BLOCK_277647, [pairs[0][0], *members], 1_388_367_702)


def mempool_frame(
    sequence: int,
    added: list[dict[str, Any]] | None = None,
    removed: list[str] | None = None,
    mined: list[str] | None = None,
    replaced: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    frame = {
        "mempool-transactions": {
            "sequence": sequence,
            "added": added or [],
            "removed": removed or [],
            "mined": mined or [],
            "replaced": replaced or [],
        }
    }
    frame.update(extra)
    return frame


def as_unconfirmed(tx: dict[str, Any]) -> dict[str, Any]:
    """A confirmed Esplora fixture tx as it appears in `added` (unconfirmed status)."""
    tx = dict(tx)
    tx["status"] = {"confirmed": False}
    return tx


def load_gbt() -> tuple[dict[str, tuple[int, int, float, int]], dict[str, list[str]], list[dict]]:
    """The mempool.space GBT fixture: (records, parents, Core's template)."""
    buffer = (GBT / "test-buffer.bin").read_bytes()
    uid_to_txid = {uid: txid for uid, txid, _rate in load(GBT / "test-data-ids.json")}
    (count,) = struct.unpack_from(">I", buffer, 0)
    offset = 4
    head = struct.Struct(">IdIIddI")
    records: dict[str, tuple[int, int, float, int]] = {}
    parents: dict[str, list[str]] = {}
    for _ in range(count):
        uid, fee, weight, sigops, _fee_rate, effective, n_inputs = head.unpack_from(buffer, offset)
        offset += head.size
        inputs = struct.unpack_from(f">{n_inputs}I", buffer, offset)
        offset += 4 * n_inputs
        txid = uid_to_txid[uid]
        records[txid] = (int(fee), weight, effective, sigops)
        if inputs:
            parents[txid] = [uid_to_txid[i] for i in inputs]
    assert offset == len(buffer)
    return records, parents, load(GBT / "target-template.json")


class Collector:
    """An event sink that keeps what the runner published, to wait on."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    async def __call__(self, event: dict) -> None:
        self.events.append(event)

    async def wait(self, count: int, timeout: float = 5.0) -> list[dict]:
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                await asyncio.sleep(0.01)
        return self.events


class RestBlock:
    """What a mempool.space/Esplora server answers about one block, built from its real bytes
    (``raw``) and, when given, its real Esplora transactions (``txs``, with prevouts)."""

    def __init__(self, raw: bytes, height: int, txs: list[dict[str, Any]] | None = None) -> None:
        from detection.ingest.blockparse import parse_header

        self.raw = raw
        self.height = height
        header = parse_header(raw)
        self.hash = header.hash
        self.header = header
        self.txs = txs
        if txs is not None:
            self.txids = [tx["txid"] for tx in txs]
            values = [sum(o["value"] for o in tx["vout"]) for tx in txs]
        else:
            from detection.ingest.blockparse import parse_block

            parsed = parse_block(raw, self.hash)
            self.txids = [tx.txid for tx in parsed.txs]
            values = [tx.output_sum for tx in parsed.txs]
        # /api/v1/block/:hash/summary: mempool's TransactionClassified list (fields we read).
        self.summary = [
            {"txid": txid, "value": value, "flags": 0}
            for txid, value in zip(self.txids, values, strict=True)
        ]

    def info(self) -> dict[str, Any]:
        return {
            "id": self.hash,
            "height": self.height,
            "timestamp": self.header.time,
            "previousblockhash": self.header.previous_hash,
            "tx_count": len(self.txids),
        }

    def ws_block(self) -> dict[str, Any]:
        """The block as a ``block`` / ``blocks`` WebSocket entry (BlockExtended, fields used)."""
        return {**self.info(), "extras": {}}


class MempoolServer:
    """A real WebSocket server on 127.0.0.1 that records what clients send and lets the test
    push frames and drop connections. On the same port, like mempool.space, it answers
    ``GET /api/tx/<txid>`` from ``rest_txs`` (404 otherwise; with ``rest_hang`` set it never
    answers until the server stops)."""

    def __init__(self) -> None:
        self.received: list[list[str]] = []  # per connection, raw text messages in order
        self.connections: list[ServerConnection] = []
        self.connected = asyncio.Event()
        self._server: Any = None
        self.port = 0
        self.rest_txs: dict[str, dict[str, Any] | str] = {}  # a str is served as-is (bad JSON)
        self.rest_requests: list[str] = []  # request paths, in order
        self.rest_hang = False
        # When set, a `GET /api/tx/<txid>` answer is held until the test sets this event.
        self.rest_tx_gate: asyncio.Event | None = None
        self._stopping = asyncio.Event()
        # Block endpoints (issue 13): served from real blocks; `rest_missing` lists endpoint
        # kinds ("summary", "raw", "txids", "txs", "tx") that answer 404 as on a server without
        # them; `rest_faults[path]` holds bad answers (status, body, headers) served first, one
        # per request, before the real one.
        self.rest_blocks: dict[str, RestBlock] = {}
        self.rest_missing: set[str] = set()
        self.rest_faults: dict[str, list[tuple[int, bytes | str, dict[str, str]]]] = {}
        self.rest_answered = asyncio.Event()
        # Resync endpoints: /api/tx/<txid>/status (404 when absent, as for a tx the server
        # never had or no longer has) and /api/tx/<txid>/outspend/<vout> ({"spent": false}
        # when absent).
        self.rest_status: dict[str, dict[str, Any]] = {}
        self.rest_outspends: dict[tuple[str, int], dict[str, Any]] = {}

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/ws"

    async def _handler(self, ws: ServerConnection) -> None:
        messages: list[str] = []
        self.received.append(messages)
        self.connections.append(ws)
        self.connected.set()
        with contextlib.suppress(Exception):
            async for message in ws:
                messages.append(message)
                if orjson.loads(message) == {"action": "ping"}:
                    await ws.send('{"pong":true}')

    async def _process_request(self, connection: ServerConnection, request: Any) -> Any:
        path = request.path
        if not path.startswith("/api/") or path == "/api/v1/ws":
            return None
        self.rest_requests.append(path)
        self.rest_answered.set()
        faults = self.rest_faults.get(path)
        if faults:
            status, body, headers = faults.pop(0)
            return _response(status, body, headers)
        parts = path.split("/")
        if path.startswith("/api/tx/") and len(parts) == 5 and parts[4] == "status":
            status = self.rest_status.get(parts[3])
            if status is None:
                return _response(404, "Transaction not found")
            return _response(200, json.dumps(status))
        if path.startswith("/api/tx/") and len(parts) == 6 and parts[4] == "outspend":
            outspend = self.rest_outspends.get((parts[3], int(parts[5])), {"spent": False})
            return _response(200, json.dumps(outspend))
        if path.startswith("/api/tx/"):
            if self.rest_hang:
                await self._stopping.wait()
            if self.rest_tx_gate is not None:
                await self.rest_tx_gate.wait()
            tx = self.rest_txs.get(path.removeprefix("/api/tx/"))
            if tx is None or "tx" in self.rest_missing:
                return _response(404, "Transaction not found")
            return _response(200, tx if isinstance(tx, str) else json.dumps(tx))
        return self._block_answer(path)

    def _block_answer(self, path: str) -> Response:
        parts = path.removeprefix("/api/").split("/")
        if parts[0] == "block-height" and len(parts) == 2:
            for block in self.rest_blocks.values():
                if str(block.height) == parts[1]:
                    return _response(200, block.hash, {"Content-Type": "text/plain"})
            return _response(404, "Block not found")
        if parts[:2] == ["v1", "block"] and len(parts) == 4 and parts[3] == "summary":
            block = self.rest_blocks.get(parts[2])
            if block is None or "summary" in self.rest_missing:
                return _response(404, "Block not found")
            return _response(200, json.dumps(block.summary))
        if parts[0] != "block" or len(parts) < 2 or parts[1] not in self.rest_blocks:
            return _response(404, "Not found")
        block = self.rest_blocks[parts[1]]
        rest = parts[2:]
        if not rest:
            return _response(200, json.dumps(block.info()))
        kind = rest[0]
        if kind in self.rest_missing:
            return _response(404, "Not found")
        if rest == ["raw"]:
            return _response(200, block.raw, {"Content-Type": "application/octet-stream"})
        if rest == ["txids"]:
            return _response(200, json.dumps(block.txids))
        if kind == "txs" and len(rest) == 2 and rest[1].isdigit() and block.txs is not None:
            start = int(rest[1])
            if start % 25 or start >= len(block.txs):
                return _response(404, "Invalid start index")
            return _response(200, json.dumps(block.txs[start : start + 25]))
        return _response(404, "Not found")

    async def start(self) -> None:
        self._server = await serve(
            self._handler,
            "127.0.0.1",
            0,
            max_size=None,
            process_request=self._process_request,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._stopping.set()
        self._server.close()
        await self._server.wait_closed()

    @property
    def current(self) -> ServerConnection:
        return self.connections[-1]

    async def wait_connections(self, count: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.connections) < count:
                await asyncio.sleep(0.01)

    async def wait_messages(self, connection: int, count: int, timeout: float = 5.0) -> list[str]:
        async with asyncio.timeout(timeout):
            while len(self.received) <= connection or len(self.received[connection]) < count:
                await asyncio.sleep(0.01)
        return self.received[connection]

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        if isinstance(frame, dict):
            frame = orjson.dumps(frame).decode()
        await self.current.send(frame)


def _response(status: int, body: bytes | str, headers: dict[str, str] | None = None) -> Response:
    data = body.encode() if isinstance(body, str) else body
    fields = Headers()
    fields["Content-Type"] = "application/json" if status == 200 else "text/plain"
    for name, value in (headers or {}).items():
        if name in fields:
            del fields[name]
        fields[name] = value
    fields["Content-Length"] = str(len(data))
    fields["Connection"] = "close"
    return Response(status, "OK" if status == 200 else "Error", fields, data)


def strip_volatile(event: dict[str, Any]) -> dict[str, Any]:
    """An event without what legitimately differs between runs (ids, clocks)."""
    event = dict(event)
    for key in ("event_id", "observed_at", "frame_received_at", "source"):
        event.pop(key)
    if event.get("projection"):
        projection = dict(event["projection"])
        projection.pop("made_at")
        event["projection"] = projection
    return event


class NullSource:
    """A source that yields nothing: for driving ``IngestRunner.process_frame`` directly."""

    spec = "test:"
    connected = True
    reconnects = 0
    disconnected_since = None

    def __aiter__(self):
        return self

    async def __anext__(self):
        raise StopAsyncIteration

    async def close(self) -> None:
        return None


def make_runner(whale_min_sats: int = 100 * 100_000_000, **options: Any):
    from detection.ingest.runner import IngestRunner

    published: list[dict[str, Any]] = []
    options.setdefault("rss_reader", None)
    runner = IngestRunner(NullSource(), published.append, whale_min_sats=whale_min_sats, **options)
    return runner


def feed(runner: Any, frame: dict[str, Any] | bytes, at: float) -> list[dict[str, Any]]:
    raw = frame if isinstance(frame, bytes) else orjson.dumps(frame)
    return runner.process_frame(at, raw)


def closed_local_port() -> int:
    """A 127.0.0.1 port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
