"""What the source-health banner says, read from the ingest heartbeat (whaleproject.health).

static/js/banner.js applies the same rules to the live `ingest.status` messages, so a page keeps
telling the truth after it was rendered; keep the two in step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from whaleproject.health import read_ingest_heartbeat

# After this long without the source the projections are too stale to show as predictions.
UNAVAILABLE_AFTER_SECONDS = 300

CONNECTED = "connected"
DEGRADED = "degraded"
UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class SourceHealth:
    state: str
    down_since: datetime | None = None
    source: str = ""
    memory_level: str = ""
    rss_mb: float | None = None
    # The heartbeat was missing or too old: the ingest process itself is silent.
    silent: bool = False

    @property
    def headline(self) -> str:
        if self.state == CONNECTED:
            return "Live: mempool source connected"
        if self.state == DEGRADED:
            return "Mempool source reconnecting"
        return "Mempool predictions unavailable"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return float(value)


def _moment(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC)


def source_health(heartbeat: dict[str, Any] | None, now: float | None = None) -> SourceHealth:
    """Connected, degraded (down under 5 minutes) or unavailable, from one heartbeat dict."""
    now = time.time() if now is None else now
    if not heartbeat:
        # The heartbeat key outlives a dead ingest by ten minutes, so "absent" means the source
        # has been gone for longer than the unavailable threshold (or never ran).
        return SourceHealth(UNAVAILABLE, silent=True)
    written_at = _number(heartbeat.get("written_at", heartbeat.get("at")))
    extras = {
        "source": str(heartbeat.get("source") or ""),
        "memory_level": str(heartbeat.get("memory_level") or ""),
        "rss_mb": _number(heartbeat.get("rss_mb")),
    }
    silent = written_at is None or now - written_at > settings.WHALE_HEARTBEAT_STALE_SECONDS
    connected = heartbeat.get("connected") is True
    if connected and not silent:
        return SourceHealth(CONNECTED, **extras)
    candidates = [_number(heartbeat.get("disconnected_since")), written_at if silent else None]
    known = [moment for moment in candidates if moment is not None]
    down_since = min(known) if known else now
    state = UNAVAILABLE if now - down_since > UNAVAILABLE_AFTER_SECONDS else DEGRADED
    return SourceHealth(state, down_since=_moment(down_since), silent=silent, **extras)


def current_source_health() -> SourceHealth:
    """The banner for this request; Redis being down is itself a reason to say "unavailable"."""
    try:
        heartbeat = read_ingest_heartbeat()
    except Exception:
        return SourceHealth(UNAVAILABLE, silent=True)
    return source_health(heartbeat)
