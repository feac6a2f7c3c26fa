"""The watch set the ingest holds (issue 21): loading the union and noticing changes.

Any change to a watchlist calls `bump_version()` (an INCR of one Redis key); the ingest compares
`current_version()` every WATCHLIST_REFRESH_SECONDS and reloads the union when it moved, so a new
entry is watched within seconds and without a restart. Redis being away is not fatal: the
version then reads as None and the ingest keeps the set it has.
"""

from __future__ import annotations

import logging

from django.db import connection
from redis.exceptions import RedisError

from detection.ingest.watch import WatchSet
from detection.models import AddressLabel, WatchTarget
from whaleproject.redis_client import get_redis, key

log = logging.getLogger(__name__)


def _version_key() -> str:
    return key("watchlist", "version")


def bump_version() -> None:
    try:
        get_redis().incr(_version_key())
    except RedisError as exc:
        log.warning("watchlist version not bumped (%s): the ingest sees the change later", exc)


def current_version() -> int | None:
    try:
        value = get_redis().get(_version_key())
    except RedisError:
        return None
    return int(value) if value is not None else 0


def watched_addresses() -> set[str]:
    """Every address some active entry watches, including the labelled addresses of entities."""
    targets = WatchTarget.objects.filter(group__active=True)
    addresses = set(targets.exclude(address="").values_list("address", flat=True).iterator())
    entities = {e.lower() for e in targets.exclude(entity="").values_list("entity", flat=True)}
    if entities:
        for address, entity in AddressLabel.objects.values_list("address", "entity").iterator():
            if entity.lower() in entities:
                addresses.add(address)
    return addresses


def load_watch_set() -> WatchSet:
    version = current_version()
    return WatchSet(watched_addresses(), version)


def refresh_if_changed(known_version) -> WatchSet | None:
    """For the ingest's refresh loop (in a thread): a new set when the version moved.

    The first call (known_version None) always loads. The database connection is closed again:
    the ingest holds none while it reads the source.
    """
    version = current_version()
    if known_version is not None and (version is None or version == known_version):
        return None
    try:
        return WatchSet(watched_addresses(), version if version is not None else 0)
    finally:
        connection.close()
