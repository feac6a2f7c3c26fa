"""Load a week of demo history (detection.demo_history) before `make demo` starts the replay."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand
from django.utils import timezone

from detection import demo_history


class Command(BaseCommand):
    help = (
        "Replace the demo history with a fresh, deterministic week of whales ending now "
        "(every flow class, fee bumps, drops, a reorg, scored predictions, demo labels)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=19)
        parser.add_argument("--whales", type=int, default=240)

    def handle(self, *args, seed, whales, **options):
        started = time.monotonic()
        summary = demo_history.load(seed=seed, now=timezone.now(), whales=whales)
        self.stdout.write(
            f"Loaded {summary.whales} demo whales ({summary.events} events, {summary.blocks} "
            f"blocks up to height {summary.tip_height:,}) in {time.monotonic() - started:.1f} s"
        )
