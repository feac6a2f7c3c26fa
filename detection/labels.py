"""Label look-ups and writes for classification (the Django side of detection.domain.labels)."""

from __future__ import annotations

from collections.abc import Iterable

from detection.domain.labels import Label
from detection.models import AddressLabel


def label_lookup(addresses: Iterable[str]) -> dict[str, Label]:
    """The best label of each address: imported before derived, then the most confident."""
    wanted = {a for a in addresses if a}
    best: dict[str, tuple[tuple[bool, float], Label]] = {}
    rows = AddressLabel.objects.filter(address__in=wanted).values_list(
        "address", "entity", "kind", "source", "confidence"
    )
    for address, entity, kind, source, confidence in rows:
        rank = (source != AddressLabel.DERIVED_SOURCE, confidence)
        if address not in best or rank > best[address][0]:
            best[address] = (rank, Label(entity, kind, source, confidence))
    return {address: label for address, (_, label) in best.items()}


def save_cluster_labels(candidates, txid: str) -> int:
    """Store clustering's derived labels; an address already derived keeps its first label."""
    rows = [
        AddressLabel(
            address=c.address,
            entity=c.label.entity,
            kind=c.label.kind,
            source=AddressLabel.DERIVED_SOURCE,
            confidence=c.label.confidence,
            derived_from_txid=txid,
        )
        for c in candidates
    ]
    created = AddressLabel.objects.bulk_create(rows, ignore_conflicts=True)
    return len(created)


RESERVED_SOURCES = frozenset({AddressLabel.DERIVED_SOURCE, "pools-v2", "admin"})


def write_labels(rows, source: str, *, progress=None) -> tuple[int, int]:
    """Insert or update labels of one source in one transaction; returns (created, updated).

    `rows` are validated (detection.domain.labels_csv). `progress(n)` is called as batches land.
    """
    from django.db import transaction

    existing = set(
        AddressLabel.objects.filter(
            source=source, address__in=[r.address for r in rows]
        ).values_list("address", flat=True)
    )
    batch_size = 1000
    with transaction.atomic():
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            AddressLabel.objects.bulk_create(
                [
                    AddressLabel(
                        address=r.address,
                        entity=r.entity,
                        kind=r.kind,
                        source=source,
                        confidence=r.confidence,
                    )
                    for r in batch
                ],
                update_conflicts=True,
                unique_fields=["address", "source"],
                update_fields=["entity", "kind", "confidence", "updated_at"],
            )
            if progress:
                progress(len(batch))
    updated = len(existing)
    return len(rows) - updated, updated
