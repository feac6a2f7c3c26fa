"""What detection announces to the apps above it (the event contract, docs/ARCHITECTURE.md).

detection never imports alerts or dashboard. They subscribe to these signals in their
AppConfig.ready(), and receivers run in INSTALLED_APPS order (the dashboard push, then alert
fan-out).
"""

from __future__ import annotations

from django.dispatch import Signal

# A whale event row has committed: sent once per newly recorded event, from
# transaction.on_commit, with `event_id` (WhaleEvent.pk). A redelivered payload that finds its
# row already recorded sends nothing. A receiver that raises stops the receivers after it and
# fails the record task's after-commit step, so a display-only receiver logs its own errors.
whale_event_committed = Signal()

# The ingest wrote a heartbeat: sent every few seconds from the ingest process, with `status`
# (the stats dict, as in the Redis heartbeat). Possibly from inside the ingest's event loop, so
# a receiver must not block; best effort, a receiver logs its own errors.
ingest_heartbeat = Signal()
