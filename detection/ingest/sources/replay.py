"""Recorded streams: the ``--record`` writer and the ``replay:PATH[?speed=N&loop=1]`` source.

Format (DESIGN §3): JSON Lines, gzip-compressed when the file name ends in ``.gz``, one frame per
line::

    {"t": <seconds since the first frame, float>, "msg": <the frame's JSON value as received>}

``msg`` holds the frame itself as a JSON value (not a string containing JSON), because frames are
JSON: the file stays readable and greppable. Replay slices the frame's bytes out of the line without
decoding them (the Recorder writes ``{"t":...,"msg":...}`` in that order), so the parser decodes
each frame once; a line in another layout is decoded in full and re-serialised.
A frame that was not valid JSON (hostile or corrupted) is kept verbatim instead as
``{"t": ..., "raw": "<text>"}`` so that replaying it exercises the parser's error path too.

Replay with ``speed=0`` yields as fast as possible; otherwise it sleeps so that frame ``t`` is
reached at ``t / speed`` seconds after the start. ``loop=1`` plays the recording again at the
end, continuing the same chain (Continuation): heights, block and first-seen times and the mempool
sequence go on from the previous pass, and each pass after the first has fresh txids and block
hashes, so its whales are new whales.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import math
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO

import orjson

from detection.ingest.sources.base import Frame, StaticStatus

log = logging.getLogger(__name__)


def _open_text(path: Path, mode: str) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.open(path, mode + "b")  # type: ignore[return-value]
    return open(path, mode + "b")  # noqa: SIM115 - the caller owns and closes it


class Recorder:
    """Appends frames to a ``.jsonl`` / ``.jsonl.gz`` recording; flushes every ``flush_every`` s."""

    def __init__(self, path: str | Path, *, flush_every: float = 1.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = _open_text(self.path, "w")
        self._first: float | None = None
        self._last_flush = time.monotonic()
        self.flush_every = flush_every
        self.frames = 0

    def write(
        self, received_at: float, raw: str | bytes, *, valid_json: bool | None = None
    ) -> None:
        """Record one frame. ``valid_json=True`` (the parser already decoded it) skips a second
        decode; None means "check"."""
        if self._first is None:
            self._first = received_at
        t = round(received_at - self._first, 6)
        data = raw.encode() if isinstance(raw, str) else bytes(raw)
        if valid_json is None:
            try:
                orjson.loads(data)
                valid_json = True
            except orjson.JSONDecodeError:
                valid_json = False
        if not valid_json:
            line = orjson.dumps({"t": t, "raw": data.decode("utf-8", "replace")})
        elif b"\n" in data or b"\r" in data:
            # A pretty-printed frame: re-serialise so that it takes exactly one line.
            line = orjson.dumps({"t": t, "msg": orjson.loads(data)})
        else:
            # Splice the frame in verbatim: no re-serialisation of a multi-MB frame.
            line = b'{"t":' + orjson.dumps(t) + b',"msg":' + data.strip() + b"}"
        self._file.write(line + b"\n")
        self.frames += 1
        now = time.monotonic()
        if now - self._last_flush >= self.flush_every:
            self.flush()
            self._last_flush = now

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_LINE_HEAD = b'{"t":'
_MSG_KEY = b',"msg":'


def _split_line(line: bytes) -> tuple[float, bytes] | None:
    """``(t, msg bytes)`` of a line in the layout the Recorder writes, without decoding ``msg``.

    The frame is handed to the parser as the bytes on disk, so it is decoded once, by the parser,
    as a live frame would be. A line in any other layout returns None and is decoded in full.
    """
    if not line.startswith(_LINE_HEAD):
        return None
    key = line.find(_MSG_KEY, len(_LINE_HEAD))
    end = line.rstrip().rfind(b"}")
    if key < 0 or end <= key:
        return None
    try:
        t = float(line[len(_LINE_HEAD) : key])
    except ValueError:
        return None
    msg = line[key + len(_MSG_KEY) : end].strip()
    return (t, msg) if msg else None


def read_recording(path: str | Path) -> Iterator[tuple[float, bytes]]:
    """Yield ``(t, raw frame bytes)`` from a recording; bad lines are logged and skipped."""
    path = Path(path)
    with _open_text(path, "r") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            split = _split_line(line)
            if split is not None:
                yield split
                continue
            try:
                entry = orjson.loads(line)
                t = float(entry["t"])
                if "raw" in entry:
                    yield t, str(entry["raw"]).encode()
                else:
                    yield t, orjson.dumps(entry["msg"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                log.warning("%s:%d: not a recording line, skipped", path, number)


class Retimer:
    """Moves a recording's clock to now: block timestamps and first-seen times are shifted by one
    offset, fixed by the first such time in the replay, so an old recording (the demo's) reads
    as happening now and continues a history that ends now. Only frames naming a time are
    decoded again."""

    KEYS = frozenset({"timestamp", "firstSeen", "mediantime"})

    def __init__(self) -> None:
        self.offset: float | None = None

    def frame(self, raw: bytes) -> bytes:
        if b'"timestamp"' not in raw and b'"firstSeen"' not in raw:
            return raw
        try:
            frame = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw
        return orjson.dumps(self._shift(frame))

    def _shift(self, value):
        if isinstance(value, list):
            return [self._shift(v) for v in value]
        if not isinstance(value, dict):
            return value
        shifted = {}
        for key, item in value.items():
            if key in self.KEYS and isinstance(item, int | float) and not isinstance(item, bool):
                if self.offset is None:
                    self.offset = time.time() - item
                shifted[key] = round(item + self.offset)
            else:
                shifted[key] = self._shift(item)
        return shifted


class Continuation:
    """Makes pass ``n`` (1, 2, …) of a looped recording continue the chain the passes before it
    left, instead of starting over: block heights go on by the recording's span of heights, times
    (Retimer.KEYS) by its length, the mempool sequence by its highest sequence; txids and block
    hashes are replaced by fresh ones derived from the pass number and the recorded value (the
    same every run), and the recording's first block builds on the previous pass's last block.

    The first pass is handed over unchanged and only read (``learn``), for those spans."""

    def __init__(self) -> None:
        self.block_ids: set[str] = set()
        self.last_block_id: str | None = None
        self.heights: tuple[int, int] | None = None  # lowest, highest
        self.sequences: tuple[int, int] | None = None
        self.times: dict[str, tuple[float, float]] = {}  # per key: a block's median time lags
        self.length = 0.0  # the last frame's t

    def learn(self, t: float, raw: bytes) -> None:
        self.length = max(self.length, t)
        try:
            frame = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return
        if not isinstance(frame, dict):
            return
        mempool = frame.get("mempool-transactions")
        if isinstance(mempool, dict) and isinstance(mempool.get("sequence"), int):
            self.sequences = _widen(self.sequences, mempool["sequence"])
        for block in _blocks(frame):
            if isinstance(block.get("id"), str):
                self.block_ids.add(block["id"])
                self.last_block_id = block["id"]
            if isinstance(block.get("height"), int):
                self.heights = _widen(self.heights, block["height"])
        self._learn_times(frame)

    def _learn_times(self, value) -> None:
        if isinstance(value, list):
            for item in value:
                self._learn_times(item)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key in Retimer.KEYS and _is_number(item):
                    self.times[key] = _widen(self.times.get(key), item)
                else:
                    self._learn_times(item)

    @property
    def period(self) -> int:
        """Seconds one pass moves the clock on: the recording's length, and never less than the
        span of any of its times, so a pass's first time comes after the last pass's last."""
        spans = [high - low + 1 for low, high in self.times.values()]
        return max(math.ceil(max([self.length, *spans])), 1)

    def frame(self, raw: bytes, n: int) -> bytes:
        try:
            frame = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw
        if not isinstance(frame, dict):
            return raw
        mempool = frame.get("mempool-transactions")
        if isinstance(mempool, dict) and isinstance(mempool.get("sequence"), int):
            mempool["sequence"] += n * _count(self.sequences)
        for block in _blocks(frame):
            if isinstance(block.get("height"), int):
                block["height"] += n * _count(self.heights)
            if isinstance(block.get("id"), str):
                block["id"] = fresh_id(block["id"], n)
            parent = block.get("previousblockhash")
            if isinstance(parent, str):
                if parent in self.block_ids:
                    block["previousblockhash"] = fresh_id(parent, n)
                elif self.last_block_id is not None:
                    # The recording's first block: it builds on the previous pass's last one.
                    block["previousblockhash"] = fresh_id(self.last_block_id, n - 1)
        return orjson.dumps(self._renew(frame, n))

    def _renew(self, value, n: int, key: str = ""):
        """Fresh txids (``txid``, ``replaced``, the ``mined`` and ``removed`` lists) and times."""
        if isinstance(value, dict):
            return {k: self._renew(item, n, k) for k, item in value.items()}
        if isinstance(value, list):
            if key in ("mined", "removed"):
                return [fresh_id(item, n) if isinstance(item, str) else item for item in value]
            return [self._renew(item, n) for item in value]
        if key in ("txid", "replaced") and isinstance(value, str):
            return fresh_id(value, n)
        if key in Retimer.KEYS and _is_number(value):
            return value + n * self.period
        return value


def fresh_id(recorded: str, n: int) -> str:
    """The txid or block hash ``recorded`` takes in pass ``n``: itself in the first pass (0),
    then a hash of the pass number and the recorded value, the same on every run."""
    if n == 0:
        return recorded
    return hashlib.sha256(f"replay pass {n}:{recorded}".encode()).hexdigest()


def _blocks(frame: dict) -> list[dict]:
    blocks = [frame["block"]] if isinstance(frame.get("block"), dict) else []
    if isinstance(frame.get("blocks"), list):
        blocks += [block for block in frame["blocks"] if isinstance(block, dict)]
    return blocks


def _widen(bounds: tuple | None, value):
    low, high = bounds or (value, value)
    return (min(low, value), max(high, value))


def _count(bounds: tuple[int, int] | None) -> int:
    """How many values the (lowest, highest) range holds: how far one pass moves it on."""
    return bounds[1] - bounds[0] + 1 if bounds else 0


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class ReplaySource(StaticStatus):
    def __init__(
        self,
        spec: str,
        path: str | Path,
        *,
        speed: float = 1.0,
        loop: bool = False,
        retime: bool = False,
    ):
        self.spec = spec
        self.path = Path(path)
        if not self.path.is_file():
            raise ValueError(f"replay file not found: {self.path}")
        if speed < 0:
            raise ValueError("replay speed must be >= 0")
        self.speed = speed
        self.loop = loop
        self.continuation = Continuation() if loop else None
        self.retimer = Retimer() if retime else None
        self._closing = False
        self.frames = 0

    def __aiter__(self) -> AsyncIterator[Frame]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[Frame]:
        self._open = True
        try:
            passes = 0
            while not self._closing:
                started = time.monotonic()
                for t, raw in read_recording(self.path):
                    if self._closing:
                        return
                    if self.speed > 0:
                        wait = started + t / self.speed - time.monotonic()
                        if wait > 0:
                            await asyncio.sleep(wait)
                    elif self.frames % 64 == 0:
                        await asyncio.sleep(0)  # as fast as possible, but let others run
                    self.frames += 1
                    if self.continuation is not None:
                        if passes == 0:
                            self.continuation.learn(t, raw)
                        else:
                            raw = self.continuation.frame(raw, passes)
                    if self.retimer is not None:
                        raw = self.retimer.frame(raw)
                    yield time.time(), raw
                if not self.loop:
                    return
                passes += 1
        finally:
            self._open = False

    async def close(self) -> None:
        self._closing = True
