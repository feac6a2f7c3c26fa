"""Retention: whale history older than WHALE_RETENTION_DAYS goes, in bounded batches.

Each batch also takes its whales' and predictions' shares out of the stats rollups, in the same
transaction, so the API's volumes and accuracy windows stay equal to the remaining rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from detection import stats
from detection.models import (
    Block,
    Prediction,
    PredictionHourlyOutcome,
    WhaleHourlyCoverage,
    WhaleHourlyVolume,
    WhaleStatus,
    WhaleTransaction,
)

BATCH = 2000


@dataclass(frozen=True)
class PurgeResult:
    whales: int
    blocks: int


def purge_history(days: int, *, dry_run: bool = False) -> PurgeResult:
    cutoff = timezone.now() - timedelta(days=days)
    # A chain goes as a whole, and never while any member is still pending.
    old_roots = WhaleTransaction.everything.filter(chain=None, first_seen_at__lt=cutoff).exclude(
        Q(status=WhaleStatus.PENDING) | Q(chain_members__status=WhaleStatus.PENDING)
    )
    old_blocks = Block.objects.filter(seen_at__lt=cutoff)
    if dry_run:
        members = WhaleTransaction.everything.filter(chain__in=old_roots).count()
        return PurgeResult(old_roots.count() + members, old_blocks.count())
    whales = 0
    while True:
        ids = list(old_roots.values_list("id", flat=True)[:BATCH])
        if not ids:
            break
        with transaction.atomic():
            batch = WhaleTransaction.everything.filter(Q(id__in=ids) | Q(chain_id__in=ids))
            # Lock first: a worker recording a late event for one of these whales then either
            # commits before the sums below are read, or waits and finds the row gone.
            locked = list(batch.select_for_update().values_list("id", flat=True))
            WhaleHourlyVolume.add(_negated(stats.volume_sums(batch)))
            WhaleHourlyCoverage.add(_negated(stats.coverage_sums(batch)))
            PredictionHourlyOutcome.add(
                _negated(stats.outcome_sums(Prediction.objects.filter(whale_id__in=locked)))
            )
            deleted, per_model = batch.delete()
        whales += per_model.get("detection.WhaleTransaction", 0)
    blocks, _ = old_blocks.delete()
    return PurgeResult(whales, blocks)


def _negated(sums: dict[tuple, tuple[int, ...]]) -> dict[tuple, tuple[int, ...]]:
    return {key: tuple(-amount for amount in amounts) for key, amounts in sums.items()}
