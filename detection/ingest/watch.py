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
        """Does an Esplora-shaped tx pay to or spend from a watched address?"""
        watched = self.addresses
        vout = tx.get("vout")
        if type(vout) is list:
            for out in vout:
                if type(out) is dict and out.get("scriptpubkey_address") in watched:
                    return True
        vin = tx.get("vin")
        if type(vin) is list:
            for item in vin:
                prevout = item.get("prevout") if type(item) is dict else None
                if type(prevout) is dict and prevout.get("scriptpubkey_address") in watched:
                    return True
        return False

    def hits(self, addresses: Iterable[str | None]) -> set[str]:
        watched = self.addresses
        return {a for a in addresses if a is not None and a in watched}


EMPTY = WatchSet()
