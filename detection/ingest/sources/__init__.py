"""Frame sources chosen by a URL-like string (DESIGN §3).

- ``wss://host/path`` / ``ws://host/path`` — live mempool.space-compatible WebSocket;
- ``replay:PATH[?speed=N&loop=1&retime=1]`` — a recording (``retime=1`` moves its block and
  first-seen times to the wall clock, the first one to now; ``loop=1`` plays it again and again
  as one chain: heights, times and sequence go on, later passes get fresh txids and block
  hashes), (``.jsonl`` / ``.jsonl.gz``), speed 0 = as fast as possible (default 1 = real time);
- ``synthetic:[?seed=N&tx_per_s=N&whale_ratio=N&speed=N&block_interval=S&rbf_ratio=N
  &cpfp_ratio=N&frames=N]`` — generated frames (speed default 1 = real time, 0 = fast).

``open_source(spec, **options)`` raises ValueError with a readable message for a bad spec;
keyword options are passed to the source (e.g. ``base_delay`` for the live client).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from detection.ingest.sources.base import Frame, FrameSource, PendingProvider
from detection.ingest.sources.live import LiveSource, backoff_delay
from detection.ingest.sources.replay import Recorder, ReplaySource, read_recording
from detection.ingest.sources.synthetic import SyntheticMempool, SyntheticSource

__all__ = [
    "Frame",
    "FrameSource",
    "LiveSource",
    "PendingProvider",
    "Recorder",
    "ReplaySource",
    "SyntheticMempool",
    "SyntheticSource",
    "backoff_delay",
    "open_source",
    "read_recording",
]

_SYNTHETIC_PARAMS: dict[str, type] = {
    "seed": int,
    "tx_per_s": float,
    "whale_ratio": float,
    "whale_every_s": float,
    "speed": float,
    "block_interval": float,
    "rbf_ratio": float,
    "cpfp_ratio": float,
    "frames": int,
}
_REPLAY_PARAMS: dict[str, type] = {"speed": float, "loop": int, "retime": int}


def _query(spec: str, query: str, allowed: dict[str, type]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    try:
        parsed = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise ValueError(f"bad query in source {spec!r}: {exc}") from None
    for key, items in parsed.items():
        if key not in allowed:
            raise ValueError(
                f"unknown parameter {key!r} in source {spec!r}; allowed: {', '.join(allowed)}"
            )
        try:
            values[key] = allowed[key](items[-1])
        except ValueError:
            raise ValueError(
                f"parameter {key!r} in {spec!r} must be {allowed[key].__name__}"
            ) from None
    return values


def open_source(spec: str, **options: Any) -> FrameSource:
    spec = spec.strip()
    if spec.startswith(("ws://", "wss://")):
        return LiveSource(spec, **options)
    if spec.startswith("replay:"):
        path, _, query = spec[len("replay:") :].partition("?")
        if not path:
            raise ValueError("replay source needs a path: replay:PATH[?speed=N&loop=1]")
        params = _query(spec, query, _REPLAY_PARAMS)
        return ReplaySource(
            spec,
            path,
            speed=params.get("speed", 1.0),
            loop=bool(params.get("loop", 0)),
            retime=bool(params.get("retime", 0)),
            **options,
        )
    if spec.startswith("synthetic:"):
        rest = spec[len("synthetic:") :]
        if rest and not rest.startswith("?"):
            raise ValueError(
                f"synthetic source takes only a query: synthetic:?seed=N..., not {spec!r}"
            )
        params = _query(spec, rest[1:], _SYNTHETIC_PARAMS)
        speed = params.pop("speed", 1.0)
        max_frames = params.pop("frames", None)
        try:
            return SyntheticSource(spec, speed=speed, max_frames=max_frames, **params, **options)
        except TypeError as exc:
            raise ValueError(f"bad synthetic source {spec!r}: {exc}") from None
    raise ValueError(
        f"unknown source {spec!r}: expected wss://..., ws://..., replay:PATH[?speed=N&loop=1] "
        "or synthetic:[?seed=N&tx_per_s=N&whale_ratio=N]"
    )
