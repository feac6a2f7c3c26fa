"""alerts 0007 / detection 0011: existing entries get their detection.WatchGroup, and their
targets move onto it, on the real database; a group lives and dies with its entry."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from alerts.watchlists import delete_entry
from detection.models import WatchGroup, WatchTarget
from tests.watchlist.conftest import SMALL_RECIPIENT, SMALL_SENDER, watch

BEFORE = [("alerts", "0006_watchlist_fiat_bounds"), ("detection", "0010_watch_groups")]
AFTER = [("alerts", "0007_entry_watch_group"), ("detection", "0011_watch_target_group")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_existing_entries_and_targets_move_onto_groups(alice):
    old = migrate(BEFORE)
    entries = old.get_model("alerts", "WatchlistEntry")
    targets = old.get_model("detection", "WatchTarget")
    on = entries.objects.create(owner_id=alice.pk, kind="address", value="1P33wMqV", active=True)
    off = entries.objects.create(owner_id=alice.pk, kind="entity", value="Binance", active=False)
    targets.objects.create(entry_id=on.pk, address="1P33wMqV")
    targets.objects.create(entry_id=off.pk, entity="Binance")
    try:
        new = migrate(AFTER)
        entries = new.get_model("alerts", "WatchlistEntry")
        targets = new.get_model("detection", "WatchTarget")
        moved = {
            entry.value: (entry.watch.active, list(targets.objects.filter(group=entry.watch)))
            for entry in entries.objects.select_related("watch")
        }
        assert moved["1P33wMqV"][0] is True
        assert [t.address for t in moved["1P33wMqV"][1]] == ["1P33wMqV"]
        assert moved["Binance"][0] is False
        assert [t.entity for t in moved["Binance"][1]] == ["Binance"]
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db
def test_the_group_and_its_targets_go_with_the_entry_however_it_goes(alice, bob):
    entry = watch(alice, SMALL_RECIPIENT)
    watch(bob, SMALL_SENDER)
    assert list(
        WatchTarget.objects.filter(group=entry.watch).values_list("address", flat=True)
    ) == [SMALL_RECIPIENT]
    entry.active = False
    entry.save()
    assert WatchGroup.objects.get(pk=entry.watch_id).active is False
    delete_entry(entry)
    assert not WatchGroup.objects.filter(pk=entry.watch_id).exists()
    bob.delete()  # an account's deletion cascades to its entries, and on to their groups
    assert not WatchGroup.objects.exists() and not WatchTarget.objects.exists()
