# Watchlists (issue 21): detection's watch targets belong to a detection-level WatchGroup; the
# alerts entry points down to its group (alerts 0007), not the target up to the entry.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('detection', '0009_watchlists'),
    ]

    operations = [
        migrations.CreateModel(
            name='WatchGroup',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('active', models.BooleanField(default=True)),
            ],
        ),
        migrations.AddField(
            model_name='watchtarget',
            name='group',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='targets', to='detection.watchgroup'),
        ),
    ]
