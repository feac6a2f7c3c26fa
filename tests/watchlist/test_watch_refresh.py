"""The ingest's view of the watchlists: the union of targets and the Redis version counter."""

from __future__ import annotations

import pytest

from alerts.watchlists import delete_entry
from detection import watching
from detection.models import AddressLabel
from tests.watchlist.conftest import SMALL_RECIPIENT, SMALL_SENDER, watch
from tests.watchlist.test_xpub import BIP84_ZPUB

pytestmark = pytest.mark.django_db(transaction=True)  # the version moves on commit


def test_a_change_moves_the_version_and_the_union_follows(alice, bob):
    first = watching.refresh_if_changed(None)
    assert first is not None and len(first) == 0
    assert watching.refresh_if_changed(first.version) is None  # nothing changed
    entry = watch(alice, SMALL_RECIPIENT)
    watch(bob, SMALL_RECIPIENT)  # the same address twice is one element
    AddressLabel.objects.create(address=SMALL_SENDER, entity="Dice Fund", kind="other", source="t")
    watch(bob, "DICE FUND", kind="entity")
    watch(alice, BIP84_ZPUB, kind="xpub")
    fresh = watching.refresh_if_changed(first.version)
    assert fresh is not None and fresh.version > first.version
    assert SMALL_RECIPIENT in fresh.addresses and SMALL_SENDER in fresh.addresses
    assert "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu" in fresh.addresses
    assert len(fresh) == 2 + 100
    delete_entry(entry)
    after = watching.refresh_if_changed(fresh.version)
    assert after is not None and SMALL_RECIPIENT in after.addresses  # bob still watches it
