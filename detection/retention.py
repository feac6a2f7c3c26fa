"""Retention: whale history older than WHALE_RETENTION_DAYS goes, in bounded batches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from detection.models import Block, WhaleStatus, WhaleTransaction

BATCH = 2000


@dataclass(frozen=True)
class PurgeResult:
    whales: int
    blocks: int


def purge_history(days: int, *, dry_run: bool = False) -> PurgeResult:
    cutoff = timezone.now() - timedelta(days=days)
    # A chain goes as a whole, and never while any member is still pending.
    old_roots = WhaleTransaction.objects.filter(chain=None, first_seen_at__lt=cutoff).exclude(
        Q(status=WhaleStatus.PENDING) | Q(chain_members__status=WhaleStatus.PENDING)
    )
    old_blocks = Block.objects.filter(seen_at__lt=cutoff)
    if dry_run:
        members = WhaleTransaction.objects.filter(chain__in=old_roots).count()
        return PurgeResult(old_roots.count() + members, old_blocks.count())
    whales = 0
    while True:
        ids = list(old_roots.values_list("id", flat=True)[:BATCH])
        if not ids:
            break
        with transaction.atomic():
            deleted, per_model = WhaleTransaction.objects.filter(
                Q(id__in=ids) | Q(chain_id__in=ids)
            ).delete()
        whales += per_model.get("detection.WhaleTransaction", 0)
    blocks, _ = old_blocks.delete()
    return PurgeResult(whales, blocks)
