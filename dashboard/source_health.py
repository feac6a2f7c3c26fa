"""What the source-health banner says, read from the ingest heartbeat (whaleproject.health).

The rule lives here only: each pushed `ingest.status` carries banner_payload (judged by the
dashboard fan-out), its words rendered by the page's own templates, plus the moments at which
the banner turns amber, then red, if nothing newer arrives. static/js/banner.js only shows them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string

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


# The judged state just after a threshold, so that the moment itself is on the right side.
_PAST_THRESHOLD = 0.001


def _words(health: SourceHealth) -> dict[str, str]:
    # Times are rendered in UTC; the browser rewrites <time data-format> in the viewer's zone.
    context = {"health": health, "user_time_zone": "UTC"}
    return {
        "state": health.state,
        "html": render_to_string("dashboard/_source_banner_words.html", context).strip(),
    }


def banner_payload(heartbeat: dict[str, Any] | None, now: float) -> dict[str, Any]:
    """The banner for one pushed heartbeat: now, and at each later moment it changes if no newer
    heartbeat arrives (silent after the stale limit, unavailable after five minutes down)."""
    current = source_health(heartbeat, now)
    payload = {**_words(current), "memory_html": _memory_html(current), "then": []}
    heartbeat = heartbeat or {}
    written_at = _number(heartbeat.get("written_at", heartbeat.get("at")))
    disconnected_since = _number(heartbeat.get("disconnected_since"))
    # source_health changes with `now` only at these moments (its thresholds).
    breakpoints = []
    if written_at is not None:
        breakpoints += [
            written_at + settings.WHALE_HEARTBEAT_STALE_SECONDS,
            written_at + UNAVAILABLE_AFTER_SECONDS,
        ]
    if disconnected_since is not None:
        breakpoints.append(disconnected_since + UNAVAILABLE_AFTER_SECONDS)
    last = current
    for moment in sorted(moment + _PAST_THRESHOLD for moment in breakpoints if moment >= now):
        judged = source_health(heartbeat, moment)
        if judged.state != last.state:
            payload["then"].append({"at": moment, **_words(judged)})
            last = judged
    return payload


def _memory_html(health: SourceHealth) -> str:
    return render_to_string("dashboard/_source_banner_memory.html", {"health": health}).strip()
