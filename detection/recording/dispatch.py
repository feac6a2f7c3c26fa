"""After the commit: announce the recorded event, once, through detection.signals.

detection imports neither alerts nor dashboard; they subscribe to whale_event_committed.
"""

from __future__ import annotations

from detection.models import WhaleEvent
from detection.signals import whale_event_committed


def after_commit(event_id: int) -> None:
    # The dashboard push, then alert fan-out (detection.signals; receivers in INSTALLED_APPS order).
    whale_event_committed.send(sender=WhaleEvent, event_id=event_id)
