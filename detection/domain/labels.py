"""Address labels: the value object the classifier reads, and the rules shared by every source.

A label says "this address is controlled by `entity`". Sources: an operator's CSV import (the
source name the operator gives), `pools-v2` (mining-pool payout addresses) and `cluster` (derived
by the common-input heuristic in flow.py, always at lower confidence, never re-used as a seed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# DESIGN §4 names exchange, miner, custodian, other. Two more, each because it changes behaviour
# or filtering: `mixer` (its inputs must never seed common-input clustering: a mixer's inputs
# belong to many owners) and `service` (payment processors, gambling sites, lending desks: not
# exchanges, so their deposits are not "exchange inflow", yet worth filtering on apart from
# "other").
LABEL_KINDS: tuple[str, ...] = ("exchange", "miner", "custodian", "mixer", "service", "other")
EXCHANGE = "exchange"
MINER = "miner"
MIXER = "mixer"

CLUSTER_SOURCE = "cluster"
POOLS_V2_SOURCE = "pools-v2"

ENTITY_MAX_LENGTH = 100

_WHITESPACE_RUN = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Label:
    entity: str
    kind: str
    source: str
    confidence: float = 1.0

    @property
    def entity_key(self) -> str:
        return entity_key(self.entity)

    @property
    def is_exchange(self) -> bool:
        return self.kind == EXCHANGE

    @property
    def is_derived(self) -> bool:
        return self.source == CLUSTER_SOURCE


LabelLookup = Mapping[str, Label]


def normalise_entity(name: str) -> str:
    """Display form: trimmed, inner whitespace runs collapsed to one space, case kept."""
    return _WHITESPACE_RUN.sub(" ", name).strip()


def entity_key(name: str) -> str:
    """Comparison form: two names with the same key are the same entity ("Binance" == "BINANCE")."""
    return normalise_entity(name).casefold()


def same_entity(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and entity_key(a) == entity_key(b)
