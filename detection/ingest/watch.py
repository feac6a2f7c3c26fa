"""The ingest's watchlist matcher (issue 21): pure, no Django.

The union of every watched address is one frozenset; a transaction is checked by a set lookup
per output address (and per input address when prevouts came). Nothing is allocated for a
transaction that touches no watched address, and an empty set costs one truth test per frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class WatchSet:
    """The addresses watched right now, with the version they were loaded at."""

    __slots__ = ("addresses", "version")

    def __init__(self, addresses: Iterable[str] = (), version: int | str | None = None) -> None:
        self.addresses: frozenset[str] = frozenset(addresses)
        self.version = version

    def __len__(self) -> int:
        return len(self.addresses)

    def __bool__(self) -> bool:
        return bool(self.addresses)

    def touches_esplora(self, tx: dict[str, Any]) -> bool:
        return touches(tx, self.addresses)

    def hits(self, addresses: Iterable[str | None]) -> set[str]:
        watched = self.addresses
        return {a for a in addresses if a is not None and a in watched}


def touches(tx: dict[str, Any], watched: frozenset[str]) -> bool:
    """Does an Esplora-shaped tx pay to or spend from a watched address? Set lookups only; a
    malformed output, input or address is skipped (the parser counts malformed txs itself).

    The frame parser's hot loop inlines this check into the loops it runs over every tx anyway
    (detection.ingest.protocol, FrameParser._parse_txs: 200,000 calls fewer per 200,000 txs);
    tests/ingest/test_ingest_watch.py holds the two to the same answers."""
    vouts = tx.get("vout") if type(tx) is dict else None
    if type(vouts) is list:
        for out in vouts:
            address = out.get("scriptpubkey_address") if type(out) is dict else None
            if type(address) is str and address in watched:
                return True
    vins = tx.get("vin") if type(tx) is dict else None
    if type(vins) is list:
        for vin in vins:
            prevout = vin.get("prevout") if type(vin) is dict else None
            if type(prevout) is dict:
                address = prevout.get("scriptpubkey_address")
                if type(address) is str and address in watched:
                    return True
    return False


EMPTY = WatchSet()
