"""What a local run (`make run`, `make demo`) needs before its processes start: the migrations,
the static files and the mining-pool labels, in one process (each manage.py start costs about
a second)."""

from __future__ import annotations

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Migrate, collect the static files and import the pool labels (make prepare)."

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, stdout=self.stdout, stderr=self.stderr)
        call_command("collectstatic", interactive=False, verbosity=0, stdout=self.stdout)
        call_command("import_pool_labels", stdout=self.stdout, stderr=self.stderr)
