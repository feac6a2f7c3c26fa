from django.core.management.base import BaseCommand

from detection.models import PredictionHourlyOutcome, WhaleHourlyCoverage, WhaleHourlyVolume
from detection.stats import rebuild_rollups


class Command(BaseCommand):
    help = (
        "Recompute the per-hour stats rollups from the whale and prediction rows (after rows "
        "were edited by hand, in the admin or with SQL)."
    )

    def handle(self, *args, **options):
        before = (
            WhaleHourlyVolume.objects.count(),
            PredictionHourlyOutcome.objects.count(),
            WhaleHourlyCoverage.objects.count(),
        )
        volumes, outcomes = rebuild_rollups()
        self.stdout.write(
            f"rebuilt {volumes} volume, {outcomes} outcome and "
            f"{WhaleHourlyCoverage.objects.count()} coverage hour row(s) "
            f"(were {before[0]}, {before[1]} and {before[2]})"
        )
