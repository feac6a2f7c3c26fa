"""Which watchlist entries one event matches, for whom, and what each owner is told (issue 21).

alerts.fanout calls `matches_for(event)` once per event and merges the result with the whale
subscriptions, so a whale that is also watched reaches each person once (one e-mail, one call per
webhook endpoint) with their watch part attached; a hit below the whale floor reaches only its
watchers. Each owner's part names their own entries, notes and private labels, and no one else's.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from alerts.watchlists import (
    Direction,
    PrivateLabel,
    WatchHit,
    WatchKind,
    WatchlistEntry,
    note_used,
    watchlist_delivery,
)
from detection.models import WatchTarget
from detection.push import WHALE_FEED_GROUP, group_send
from detection.summary import btc


@dataclass
class Match:
    entry: WatchlistEntry
    direction: str
    amount_sats: int
    addresses: list[str]


@dataclass
class OwnerMatches:
    owner_id: int
    matches: list[Match] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)

    def part(self) -> dict[str, Any]:
        """The watch part of this owner's alert: their entries, notes and private labels."""
        return {
            "entries": [
                {
                    "id": str(m.entry.public_id),
                    "kind": m.entry.kind,
                    "value": m.entry.value,
                    "note": m.entry.note,
                    "direction": m.direction,
                    "amount_btc": btc(m.amount_sats),
                    "addresses": m.addresses,
                }
                for m in self.matches
            ],
            "labels": self.labels,
        }


def _sums(rows) -> dict[str, int]:
    sums: dict[str, int] = defaultdict(int)
    for row in rows:
        address = row.get("address")
        if address:
            sums[address] += row.get("value") or 0
    return sums


def matches_for(event) -> dict[int, OwnerMatches]:
    whale = event.whale
    incoming = _sums(whale.outputs)
    outgoing = _sums(whale.inputs)
    addresses = set(incoming) | set(outgoing)
    if not addresses:
        return {}
    # entry id -> addresses of the transaction it watches. One query: the address targets it
    # touches, and every entity target (few), matched against the labels recorded on the row.
    by_entity: dict[str, set[str]] = defaultdict(set)
    for row in whale.inputs + whale.outputs:
        label = row.get("label")
        if label and row.get("address"):
            by_entity[str(label.get("entity", "")).lower()].add(row["address"])
    watched: dict[int, set[str]] = defaultdict(set)
    for entry_id, address, entity in WatchTarget.objects.filter(
        Q(address__in=addresses) | (Q(address="") & ~Q(entity="")), group__active=True
    ).values_list("group__watchlist_entry", "address", "entity"):
        if address:
            watched[entry_id].add(address)
        else:
            watched[entry_id] |= by_entity.get(entity.lower(), set())
    watched = {k: v for k, v in watched.items() if v}
    if not watched:
        return {}
    found: dict[int, OwnerMatches] = {}
    prices = WatchlistEntry.prices_of(whale)
    entries = WatchlistEntry.objects.filter(pk__in=watched).select_related(
        "delivery", "delivery__owner", "delivery__owner__profile"
    )
    for entry in entries.order_by("id"):
        if entry.delivery_id is None:
            # its subscription was deleted: back to the owner's default watchlist delivery
            entry.delivery = watchlist_delivery(entry.owner)
            entry.save(update_fields=["delivery"])
        mine = watched[entry.pk]
        for direction, sums in ((Direction.INCOMING, incoming), (Direction.OUTGOING, outgoing)):
            hit = sorted(a for a in mine if a in sums)
            if not hit:
                continue
            amount = sum(sums[a] for a in hit)
            if entry.wants(direction, amount, prices):
                owner = found.setdefault(entry.owner_id, OwnerMatches(entry.owner_id))
                owner.matches.append(Match(entry, str(direction), amount, hit))
                break  # one match per entry: incoming first, as a payment to it is the news
    for owner in found.values():
        owner.labels = dict(
            PrivateLabel.objects.filter(owner_id=owner.owner_id, address__in=addresses).values_list(
                "address", "name"
            )
        )
    return found


def owner_parts(event, found: dict[int, OwnerMatches], owner_ids: set[int]) -> dict[int, dict]:
    """The `data.watch` part of each recipient's alert: the watchers' matches and labels, and
    for a whale subscriber who watches nothing here, their private labels of its addresses."""
    parts = {owner_id: owner.part() for owner_id, owner in found.items()}
    others = owner_ids - set(found)
    if others:
        addresses = event.whale.addresses()
        labels: dict[int, dict[str, str]] = defaultdict(dict)
        for owner_id, address, name in PrivateLabel.objects.filter(
            owner_id__in=others, address__in=addresses
        ).values_list("owner_id", "address", "name"):
            labels[owner_id][address] = name
        for owner_id, named in labels.items():
            parts[owner_id] = {"entries": [], "labels": named}
    return parts


def delivery_subscriptions(found: dict[int, OwnerMatches], kind: str) -> list:
    """The matching owners' delivery settings (Subscriptions) that want this kind of event."""
    seen: dict[int, Any] = {}
    for owner in found.values():
        for match in owner.matches:
            delivery = match.entry.delivery
            if (
                delivery is not None
                and delivery.active
                and getattr(delivery, f"notify_{kind}", False)
                and delivery.pk not in seen
            ):
                seen[delivery.pk] = delivery
    return list(seen.values())


def record_hits(event, found: dict[int, OwnerMatches]) -> None:
    WatchHit.objects.bulk_create(
        [
            WatchHit(entry=m.entry, event=event, direction=m.direction, amount_sats=m.amount_sats)
            for owner in found.values()
            for m in owner.matches
        ],
        ignore_conflicts=True,
    )
    used = {a for owner in found.values() for m in owner.matches for a in m.addresses}
    if any(m.entry.kind == WatchKind.XPUB for o in found.values() for m in o.matches):
        note_used(used)


def push_hits(event, found: dict[int, OwnerMatches], summary: dict[str, Any]) -> None:
    """Each owner's hit, over the dashboard socket, to that owner's sockets only."""
    for owner in found.values():
        group_send(
            WHALE_FEED_GROUP,
            {
                "type": "watch.hit",
                "user_id": owner.owner_id,
                "hit": {**summary, "watch": owner.part()},
            },
        )
