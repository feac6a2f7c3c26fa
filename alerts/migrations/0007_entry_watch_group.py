# Watchlists (issue 21): each entry owns a detection.WatchGroup (made here for existing entries,
# with their targets moved onto it); detection 0011 then drops the target's link to the entry.

import django.db.models.deletion
from django.db import migrations, models


def give_entries_groups(apps, schema_editor):
    entries = apps.get_model('alerts', 'WatchlistEntry')
    groups = apps.get_model('detection', 'WatchGroup')
    targets = apps.get_model('detection', 'WatchTarget')
    for entry in entries.objects.filter(watch__isnull=True).iterator():
        entry.watch = groups.objects.create(active=entry.active)
        entry.save(update_fields=['watch'])
        targets.objects.filter(entry_id=entry.pk).update(group=entry.watch)


def give_targets_back(apps, schema_editor):
    entries = apps.get_model('alerts', 'WatchlistEntry')
    targets = apps.get_model('detection', 'WatchTarget')
    for entry in entries.objects.exclude(watch__isnull=True).iterator():
        targets.objects.filter(group_id=entry.watch_id).update(entry=entry)


class Migration(migrations.Migration):

    dependencies = [
        ('alerts', '0006_watchlist_fiat_bounds'),
        ('detection', '0010_watch_groups'),
    ]

    operations = [
        migrations.AddField(
            model_name='watchlistentry',
            name='watch',
            field=models.OneToOneField(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='watchlist_entry', to='detection.watchgroup'),
        ),
        migrations.RunPython(give_entries_groups, give_targets_back),
        migrations.AlterField(
            model_name='watchlistentry',
            name='watch',
            field=models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='watchlist_entry', to='detection.watchgroup'),
        ),
    ]
