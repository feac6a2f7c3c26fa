# Watchlists (issue 21): the targets now hang on their WatchGroup only (filled by alerts 0007).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('detection', '0010_watch_groups'),
        ('alerts', '0007_entry_watch_group'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='watchtarget',
            name='watch_target_once',
        ),
        migrations.RemoveField(
            model_name='watchtarget',
            name='entry',
        ),
        migrations.AlterField(
            model_name='watchtarget',
            name='group',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='targets', to='detection.watchgroup'),
        ),
        migrations.AddConstraint(
            model_name='watchtarget',
            constraint=models.UniqueConstraint(fields=('group', 'address', 'entity'), name='watch_target_once'),
        ),
    ]
