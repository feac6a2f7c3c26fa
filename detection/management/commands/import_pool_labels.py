from django.core.management.base import BaseCommand, CommandError

from detection.domain.labels_csv import DEFAULT_POOLS_V2_PATH, load_pools_v2
from detection.labels import write_labels


class _PoolRow:
    __slots__ = ("address", "entity", "kind", "confidence")

    def __init__(self, address: str, entity: str):
        self.address, self.entity, self.kind, self.confidence = address, entity, "miner", 1.0


class Command(BaseCommand):
    help = "Label mining-pool payout addresses from pools-v2.json (MIT, bundled in detection/data)."

    def add_arguments(self, parser):
        parser.add_argument("--path", default=str(DEFAULT_POOLS_V2_PATH))

    def handle(self, *args, path, **options):
        try:
            pools = load_pools_v2(path)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot load {path}: {exc}") from None
        rows = [_PoolRow(p.address, p.pool_name) for p in pools]
        created, updated = write_labels(rows, "pools-v2")
        self.stdout.write(
            f"pools-v2: {len(rows)} payout address(es) ({created} new, {updated} updated)"
        )
