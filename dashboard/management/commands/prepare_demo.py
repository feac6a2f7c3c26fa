"""Everything `make demo` does before it starts the processes, in one process so the demo has
its story on screen within 15 s of `make demo`: the local preparation (prepare_local), the demo
login, a week of history ending now, then the example alerts on the local receiver."""

from __future__ import annotations

import time

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Prepare the offline demo: migrate, demo login, a week of history, example alerts."

    def add_arguments(self, parser):
        parser.add_argument("--receiver-url", required=True, help="the demo webhook's URL")

    def handle(self, *args, receiver_url, **options):
        took = []
        for name, kwargs in (
            ("prepare_local", {}),
            ("create_demo_user", {}),
            ("load_demo_history", {}),
            ("create_demo_alerts", {"url": receiver_url}),
        ):
            started = time.monotonic()
            call_command(name, stdout=self.stdout, stderr=self.stderr, **kwargs)
            took.append(f"{name} {time.monotonic() - started:.1f} s")
        self.stdout.write("Demo prepared: " + ", ".join(took))
