"""The alerts app's subscription to detection's announcements (detection.signals), and its own
announcement to the dashboard's sockets when a user's private labels change."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from alerts.fanout import fan_out
from alerts.watchlists import PrivateLabel, WatchlistEntry
from detection.models import WatchGroup
from detection.push import WHALE_FEED_GROUP, group_send
from detection.signals import whale_event_committed

log = logging.getLogger(__name__)


@receiver(whale_event_committed, dispatch_uid="alerts-fan-out")
def fan_out_committed_event(sender, event_id: int, **kwargs) -> None:
    # Errors propagate: the record task's after-commit step fails loudly, and the sweeper
    # fans out any committed event that has no EventFanOut row.
    fan_out(event_id)


@receiver(post_delete, sender=WatchlistEntry, dispatch_uid="alerts-watch-entry-deleted")
def watch_group_goes_with_its_entry(sender, instance: WatchlistEntry, **kwargs) -> None:
    """However an entry is deleted (its page, the API, the admin, its owner's account), the
    ingest stops watching its targets: they go with its detection.WatchGroup."""
    WatchGroup.objects.filter(pk=instance.watch_id).delete()


def _tell_sockets(owner_id: int) -> None:
    try:
        group_send(WHALE_FEED_GROUP, {"type": "labels.changed", "user_id": owner_id})
    except Exception:
        # Display only: the owner's open feeds show the old labels until they reconnect.
        log.warning("private labels change not pushed to the dashboard", exc_info=True)


@receiver(post_save, sender=PrivateLabel, dispatch_uid="alerts-private-label-saved")
@receiver(post_delete, sender=PrivateLabel, dispatch_uid="alerts-private-label-deleted")
def private_labels_changed(sender, instance: PrivateLabel, **kwargs) -> None:
    """The owner's open dashboard sockets re-read their labels (dashboard.fanout)."""
    owner_id = instance.owner_id
    transaction.on_commit(lambda: _tell_sockets(owner_id))
