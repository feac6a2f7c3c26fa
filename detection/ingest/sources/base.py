"""The source interface: an async iterator of ``(received_at, raw_frame)``.

``received_at`` is the wall-clock epoch (float) at which the frame was read; ``raw_frame`` is the
frame text exactly as the server sent it (``str``) or its bytes, ready for
``FrameParser.parse``. Sources only read and hand frames on: they never parse or block on
processing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Protocol, runtime_checkable

Frame = tuple[float, str | bytes]
PendingProvider = Callable[[], list[str]]


@runtime_checkable
class FrameSource(Protocol):
    spec: str  # the URL-like string this source was opened from (appears in events as `source`)

    @property
    def connected(self) -> bool: ...

    @property
    def reconnects(self) -> int: ...

    @property
    def disconnected_since(self) -> float | None: ...

    def __aiter__(self) -> AsyncIterator[Frame]: ...

    async def close(self) -> None: ...


class StaticStatus:
    """Connection status for sources without a connection (replay, synthetic)."""

    spec: str
    _open = False

    @property
    def connected(self) -> bool:
        return self._open

    @property
    def reconnects(self) -> int:
        return 0

    @property
    def disconnected_since(self) -> float | None:
        return None

    def set_pending_provider(self, provider: PendingProvider) -> None:
        """Only the live source resynchronises; accepted here so callers need not care."""
