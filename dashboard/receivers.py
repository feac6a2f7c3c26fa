"""The dashboard's subscriptions to detection's announcements (detection.signals).

Display only and best effort: the browser re-reads the database on every reconnect, so a lost
push is logged here and never raised into the record task or the ingest.
"""

from __future__ import annotations

import logging

from django.dispatch import receiver

from dashboard.live import publish_ingest_status
from dashboard.rows import row_fields
from detection.push import push_event
from detection.signals import ingest_heartbeat, whale_event_committed

log = logging.getLogger(__name__)


@receiver(whale_event_committed, dispatch_uid="dashboard-push")
def push_committed_event(sender, event_id: int, **kwargs) -> None:
    try:
        push_event(event_id, render_row=row_fields)
    except Exception:
        # A lost push must not stop alert fan-out, the next receiver.
        log.exception("dashboard push failed for event %s", event_id)


@receiver(ingest_heartbeat, dispatch_uid="dashboard-ingest-status")
def push_ingest_status(sender, status: dict, **kwargs) -> None:
    publish_ingest_status(status)
