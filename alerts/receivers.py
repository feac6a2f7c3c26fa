"""The alerts app's subscription to detection's announcements (detection.signals)."""

from __future__ import annotations

from django.dispatch import receiver

from alerts.fanout import fan_out
from detection.signals import whale_event_committed


@receiver(whale_event_committed, dispatch_uid="alerts-fan-out")
def fan_out_committed_event(sender, event_id: int, **kwargs) -> None:
    # Errors propagate: the record task's after-commit step fails loudly, and the sweeper
    # fans out any committed event that has no EventFanOut row.
    fan_out(event_id)
