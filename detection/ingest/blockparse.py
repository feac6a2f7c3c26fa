"""A small deserializer for consensus-serialized blocks (``GET /api/block/<hash>/raw``).

Pure Python, no Django. It reads the 80-byte header and every transaction (legacy and BIP-144
segwit serialization), computes each txid (double SHA-256 of the serialization without witness
data) and keeps per output only what a whale scan needs: the value and the scriptPubKey. Input
values are not in a block, so a block-only transaction has no fee and no input addresses; they
stay unknown (``prevout: null``), never guessed.

Every length is checked against the bytes left, and the block is rejected (``BlockParseError``
with a short stable ``reason``) when it is truncated, has trailing bytes, its header hash is not
the hash asked for, or its merkle root does not match its transactions: a REST answer that is
cut short or belongs to another block must never produce a record.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Any

from detection.domain.addresses import script_address

_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")
_HEADER = struct.Struct("<i32s32sIII")
HEADER_SIZE = 80
MAX_BLOCK_BYTES = 8 * 2**20  # 4 MWU is at most 4 MB serialized; twice that is not a block
MAX_SATS = 21_000_000 * 100_000_000


class BlockParseError(ValueError):
    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True, slots=True)
class BlockHeader:
    hash: str
    version: int
    previous_hash: str
    merkle_root: str
    time: int
    bits: int
    nonce: int


@dataclass(frozen=True, slots=True)
class BlockTx:
    txid: str
    version: int
    locktime: int
    inputs: tuple[tuple[str, int, int], ...]  # (prev txid, prev vout, sequence)
    outputs: tuple[tuple[int, bytes], ...]  # (value in sats, scriptPubKey)
    size: int
    weight: int
    is_coinbase: bool

    @property
    def output_sum(self) -> int:
        return sum(value for value, _script in self.outputs)

    def to_esplora(self, header: BlockHeader | None = None, height: int | None = None) -> dict:
        """The Esplora JSON shape of what the block says about this tx: ``prevout`` and
        ``fee`` are null (the block has no input values)."""
        vout = []
        for value, script in self.outputs:
            script_type, address = script_address(script)
            out: dict[str, Any] = {
                "scriptpubkey": script.hex(),
                "scriptpubkey_type": script_type,
                "value": value,
            }
            if address is not None:
                out["scriptpubkey_address"] = address
            vout.append(out)
        status: dict[str, Any] = {"confirmed": header is not None}
        if header is not None:
            status.update(block_height=height, block_hash=header.hash, block_time=header.time)
        return {
            "txid": self.txid,
            "version": self.version,
            "locktime": self.locktime,
            "vin": [
                {
                    "txid": prev,
                    "vout": vout_index,
                    "prevout": None,
                    "sequence": sequence,
                    "is_coinbase": self.is_coinbase,
                }
                for prev, vout_index, sequence in self.inputs
            ],
            "vout": vout,
            "size": self.size,
            "weight": self.weight,
            "fee": None,
            "status": status,
        }


@dataclass(frozen=True, slots=True)
class Block:
    header: BlockHeader
    txs: tuple[BlockTx, ...]

    @property
    def hash(self) -> str:
        return self.header.hash

    def whales(self, floor_sats: int) -> list[BlockTx]:
        """Non-coinbase transactions whose outputs sum to ``floor_sats`` or more."""
        return [tx for tx in self.txs[1:] if tx.output_sum >= floor_sats]


def _sha256d(data: bytes | memoryview) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def block_hash(header: bytes) -> str:
    return _sha256d(header[:HEADER_SIZE])[::-1].hex()


def parse_header(data: bytes) -> BlockHeader:
    if len(data) < HEADER_SIZE:
        raise BlockParseError("truncated", f"{len(data)} header bytes")
    version, prev, merkle, time, bits, nonce = _HEADER.unpack_from(data, 0)
    return BlockHeader(
        hash=block_hash(data),
        version=version,
        previous_hash=prev[::-1].hex(),
        merkle_root=merkle[::-1].hex(),
        time=time,
        bits=bits,
        nonce=nonce,
    )


class _Reader:
    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data)

    def need(self, count: int) -> int:
        start = self.pos
        stop = start + count
        if stop > self.end:
            raise BlockParseError("truncated", f"needed {count} bytes at offset {start}")
        self.pos = stop
        return start

    def varint(self) -> int:
        first = self.data[self.need(1)]
        if first < 0xFD:
            return first
        size = 2 if first == 0xFD else 4 if first == 0xFE else 8
        return int.from_bytes(self.data[self.need(size) : self.pos], "little")

    def count(self, per_item: int) -> int:
        """A varint count, bounded by the bytes left (each item is at least ``per_item``)."""
        value = self.varint()
        if value * per_item > self.end - self.pos:
            raise BlockParseError("truncated", f"count {value} at offset {self.pos}")
        return value


def _parse_tx(reader: _Reader) -> BlockTx:
    data = reader.data
    start = reader.pos
    (version,) = _U32.unpack_from(data, reader.need(4))
    segwit = reader.pos + 1 < reader.end and data[reader.pos] == 0 and data[reader.pos + 1] == 1
    if segwit:
        reader.need(2)
    body_start = reader.pos
    n_in = reader.count(41)
    inputs = []
    for _ in range(n_in):
        at = reader.need(36)
        prev = data[at : at + 32][::-1].hex()
        (prev_vout,) = _U32.unpack_from(data, at + 32)
        reader.need(reader.count(1))
        (sequence,) = _U32.unpack_from(data, reader.need(4))
        inputs.append((prev, prev_vout, sequence))
    n_out = reader.count(9)
    outputs = []
    for _ in range(n_out):
        (value,) = _I64.unpack_from(data, reader.need(8))
        if not 0 <= value <= MAX_SATS:
            raise BlockParseError("bad_value", f"{value} sats")
        length = reader.count(1)
        at = reader.need(length)
        outputs.append((value, data[at : at + length]))
    body_end = reader.pos
    if segwit:
        for _ in range(n_in):
            for _item in range(reader.count(1)):
                reader.need(reader.count(1))
    locktime_at = reader.need(4)
    (locktime,) = _U32.unpack_from(data, locktime_at)
    size = reader.pos - start
    if segwit:
        stripped = (
            data[start : start + 4] + data[body_start:body_end] + data[locktime_at : reader.pos]
        )
        base_size = len(stripped)
    else:
        stripped = data[start : reader.pos]
        base_size = size
    is_coinbase = n_in == 1 and inputs[0][0] == "0" * 64 and inputs[0][1] == 0xFFFFFFFF
    return BlockTx(
        txid=_sha256d(stripped)[::-1].hex(),
        version=version,
        locktime=locktime,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        size=size,
        weight=base_size * 3 + size,
        is_coinbase=is_coinbase,
    )


def merkle_root(txids: list[str]) -> str:
    level = [bytes.fromhex(txid)[::-1] for txid in txids]
    if not level:
        return "0" * 64
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [_sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0][::-1].hex()


def parse_block(data: bytes, expected_hash: str | None = None) -> Block:
    """Parse and check one block; raise ``BlockParseError`` on anything wrong with it."""
    if len(data) > MAX_BLOCK_BYTES:
        raise BlockParseError("too_large", f"{len(data)} bytes")
    header = parse_header(data)
    if expected_hash is not None and header.hash != expected_hash:
        raise BlockParseError("wrong_hash", f"got {header.hash}")
    reader = _Reader(data, HEADER_SIZE)
    n_tx = reader.count(60)
    if n_tx == 0:
        raise BlockParseError("no_transactions")
    txs = tuple(_parse_tx(reader) for _ in range(n_tx))
    if reader.pos != reader.end:
        raise BlockParseError("trailing_bytes", f"{reader.end - reader.pos} bytes")
    if not txs[0].is_coinbase:
        raise BlockParseError("no_coinbase")
    if merkle_root([tx.txid for tx in txs]) != header.merkle_root:
        raise BlockParseError("bad_merkle_root")
    return Block(header=header, txs=txs)


def serialized_transactions(data: bytes) -> list[tuple[bytes, BlockTx]]:
    """Each transaction of a block with its own serialized bytes (to build test blocks)."""
    reader = _Reader(data, HEADER_SIZE)
    result = []
    for _ in range(reader.count(60)):
        start = reader.pos
        tx = _parse_tx(reader)
        result.append((data[start : reader.pos], tx))
    return result
