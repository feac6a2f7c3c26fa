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
    """Does an Esplora-shaped tx pay to or spend from a watched address? Set lookups only;
    anything malformed simply does not match (the parser counts malformed txs itself)."""
    try:
        for out in tx["vout"]:
            if out.get("scriptpubkey_address") in watched:
                return True
        for item in tx.get("vin") or ():
            prevout = item.get("prevout")
            if prevout and prevout.get("scriptpubkey_address") in watched:
                return True
    except (AttributeError, TypeError, KeyError):
        return False
    return False


EMPTY = WatchSet()
