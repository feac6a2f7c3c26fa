from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from detection.retention import purge_history


class Command(BaseCommand):
    help = "Delete whales (with their events and predictions) and blocks older than the retention."

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help=f"keep this many days (default WHALE_RETENTION_DAYS, now {settings.WHALE_RETENTION_DAYS})",
        )
        parser.add_argument("--dry-run", action="store_true", help="count only, delete nothing")

    def handle(self, *args, days, dry_run, **options):
        days = settings.WHALE_RETENTION_DAYS if days is None else days
        if days < 1:
            raise CommandError("--days must be at least 1")
        result = purge_history(days, dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        self.stdout.write(
            f"{verb} {result.whales} whale(s) and {result.blocks} block(s) older than {days} days"
        )
