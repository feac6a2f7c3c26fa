"""Parse operator label files (CSV) and the mining-pools list (pools-v2.json) into labels.

CSV format (UTF-8, optional BOM, LF or CRLF):

    address,entity,kind,confidence
    bc1q...,Example Exchange,exchange,0.9

* The header row is required; column names are case-insensitive and may be in any order.
  `address`, `entity`, `kind` are required, `confidence` is optional (default 1.0).
* Any other column is an error, not ignored: the most likely "other column" is a misspelt
  `confidence`, and ignoring it would silently import every row at full confidence.
* Blank lines and lines whose first cell starts with `#` are skipped (comments).
* Every problem is collected with its physical line number (the header is line 1); the caller
  imports nothing if there is any error, so one pass shows the operator everything to fix.
* A duplicate address is an error whether or not the entity matches: a file that repeats itself
  was probably assembled by hand, and a conflicting repeat must not be resolved by row order.
* Bech32 addresses are stored lower-cased (their canonical form, and what sources send), base58
  addresses as written (base58 is case-sensitive).
* An entity spelt differently in case across rows ("Kraken", "KRAKEN") is one entity; every row
  takes the spelling of its first occurrence in the file.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from .addresses import MAINNET_ONLY, AddressError, Network, validate_address
from .labels import (
    ENTITY_MAX_LENGTH,
    LABEL_KINDS,
    MINER,
    POOLS_V2_SOURCE,
    Label,
    entity_key,
    normalise_entity,
)

REQUIRED_COLUMNS = ("address", "entity", "kind")
OPTIONAL_COLUMNS = ("confidence",)
DEFAULT_CONFIDENCE = 1.0

DEFAULT_POOLS_V2_PATH = Path(__file__).resolve().parent.parent / "data" / "pools-v2.json"


@dataclass(frozen=True, slots=True)
class LabelRow:
    line: int
    address: str
    entity: str
    kind: str
    confidence: float
    address_kind: str  # p2pkh, p2sh, p2wpkh, p2wsh, p2tr, witness_unknown

    def to_label(self, source: str) -> Label:
        return Label(self.entity, self.kind, source, self.confidence)


@dataclass(frozen=True, slots=True)
class LabelCsvError:
    line: int  # 0 when the problem is with the file as a whole (undecodable bytes)
    column: str | None
    message: str

    def __str__(self) -> str:
        where = (f"line {self.line}" if self.line else "file") + (
            f", {self.column}" if self.column else ""
        )
        return f"{where}: {self.message}"


class LabelCsvResult(NamedTuple):
    rows: list[LabelRow]
    errors: list[LabelCsvError]

    @property
    def ok(self) -> bool:
        return not self.errors


def parse_label_csv(
    data: str | bytes, networks: Iterable[Network | str] = MAINNET_ONLY
) -> LabelCsvResult:
    """Validate a whole label file. Returns (rows, errors); import the rows only if no errors."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            # The whole file is refused (line 0), but the operator still needs to know where.
            # utf-8-sig counts positions after the BOM it strips.
            start = exc.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
            where = data[:start].count(b"\n") + 1
            return LabelCsvResult(
                [],
                [LabelCsvError(0, None, f"not UTF-8: {exc.reason} on line {where}")],
            )
    else:
        text = data.removeprefix("\ufeff")
    allowed_networks = frozenset(Network(n) for n in networks)

    # strict: an unbalanced quote is an error, not a field that silently swallows every later
    # row up to the end of the file.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    errors: list[LabelCsvError] = []
    rows: list[LabelRow] = []
    columns: dict[str, int] | None = None
    first_line_of: dict[str, tuple[int, str, str]] = {}  # address -> (line, entity, kind)
    display_name_of: dict[str, str] = {}  # entity key -> first spelling seen
    next_line = 1
    try:
        for record in reader:
            line, next_line = next_line, reader.line_num + 1
            if _is_blank_or_comment(record):
                continue
            if columns is None:
                columns = _read_header(record, line, errors)
                if columns is None:
                    return LabelCsvResult([], errors)
                continue
            row = _read_row(record, line, columns, allowed_networks, errors)
            if row is None:
                continue
            earlier = first_line_of.get(row.address)
            if earlier is not None:
                errors.append(_duplicate_error(row, earlier))
                continue
            first_line_of[row.address] = (row.line, row.entity, row.kind)
            display = display_name_of.setdefault(entity_key(row.entity), row.entity)
            rows.append(_with_entity(row, display))
    except csv.Error as exc:
        # next_line is where the broken record began; reader.line_num is where the reader gave
        # up, which for an unclosed quote is the end of the file.
        errors.append(LabelCsvError(next_line, None, f"malformed CSV: {exc}"))
    if columns is None and not errors:
        errors.append(LabelCsvError(1, None, "missing header row (address,entity,kind)"))
    return LabelCsvResult(rows, errors)


def parse_label_csv_file(
    path: str | Path, networks: Iterable[Network | str] = MAINNET_ONLY
) -> LabelCsvResult:
    return parse_label_csv(Path(path).read_bytes(), networks)


def _is_blank_or_comment(record: list[str]) -> bool:
    if all(not cell.strip() for cell in record):
        return True
    return record[0].lstrip().startswith("#")


def _read_header(
    record: list[str], line: int, errors: list[LabelCsvError]
) -> dict[str, int] | None:
    names = [cell.strip().lower() for cell in record]
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    problems: list[str] = []
    unknown = [n for n in names if n not in known]
    if unknown:
        problems.append(
            f"unknown column(s) {', '.join(repr(n) for n in unknown)}; "
            f"allowed: {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems.append(f"repeated column(s) {', '.join(repeated)}")
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        problems.append(f"missing required column(s) {', '.join(missing)}")
    if problems:
        errors.append(LabelCsvError(line, None, "header: " + "; ".join(problems)))
        return None
    return {name: index for index, name in enumerate(names)}


def _read_row(
    record: list[str],
    line: int,
    columns: dict[str, int],
    networks: frozenset[Network],
    errors: list[LabelCsvError],
) -> LabelRow | None:
    if len(record) > len(columns):
        errors.append(LabelCsvError(line, None, f"{len(record)} fields, header has {len(columns)}"))
        return None
    cells = {name: (record[i].strip() if i < len(record) else "") for name, i in columns.items()}
    before = len(errors)

    address = cells["address"]
    address_kind = ""
    if not address:
        errors.append(LabelCsvError(line, "address", "empty"))
    else:
        try:
            info = validate_address(address, networks)
        except AddressError as exc:
            errors.append(LabelCsvError(line, "address", f"invalid address {address!r}: {exc}"))
        else:
            address, address_kind = info.address, info.kind.value

    entity = normalise_entity(cells["entity"])
    if not entity:
        errors.append(LabelCsvError(line, "entity", "empty"))
    elif len(entity) > ENTITY_MAX_LENGTH:
        errors.append(LabelCsvError(line, "entity", f"longer than {ENTITY_MAX_LENGTH} characters"))
    elif any(not ch.isprintable() for ch in entity):
        errors.append(LabelCsvError(line, "entity", "contains control characters"))

    kind = cells["kind"].lower()
    if kind not in LABEL_KINDS:
        errors.append(
            LabelCsvError(line, "kind", f"unknown kind {kind!r}; allowed: {', '.join(LABEL_KINDS)}")
        )

    confidence = _parse_confidence(cells.get("confidence", ""), line, errors)

    if len(errors) > before:
        return None
    return LabelRow(line, address, entity, kind, confidence, address_kind)


def _parse_confidence(text: str, line: int, errors: list[LabelCsvError]) -> float:
    if not text:
        return DEFAULT_CONFIDENCE
    try:
        value = float(text)
    except ValueError:
        errors.append(LabelCsvError(line, "confidence", f"not a number: {text!r}"))
        return DEFAULT_CONFIDENCE
    # float() accepts "nan" and "inf"; neither is a confidence.
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        errors.append(LabelCsvError(line, "confidence", f"{text!r} is outside 0..1"))
    return value


def _duplicate_error(row: LabelRow, earlier: tuple[int, str, str]) -> LabelCsvError:
    first_line, first_entity, first_kind = earlier
    if entity_key(first_entity) == entity_key(row.entity) and first_kind == row.kind:
        detail = "same entity"
    else:
        detail = f"conflicting: {first_entity!r} ({first_kind}) vs {row.entity!r} ({row.kind})"
    return LabelCsvError(
        row.line, "address", f"duplicate of line {first_line} ({detail}): {row.address}"
    )


def _with_entity(row: LabelRow, entity: str) -> LabelRow:
    if entity == row.entity:
        return row
    return LabelRow(row.line, row.address, entity, row.kind, row.confidence, row.address_kind)


# --- pools-v2.json -----------------------------------------------------------------------------


class PoolAddress(NamedTuple):
    address: str
    pool_name: str

    def to_label(self) -> Label:
        return Label(self.pool_name, MINER, POOLS_V2_SOURCE, 1.0)


class PoolsV2Result(NamedTuple):
    addresses: list[PoolAddress]
    rejected: list[tuple[str, str]]  # (address, why): testnet entries, bad checksums, conflicts


def parse_pools_v2(data: Any) -> PoolsV2Result:
    """Payout addresses of mining pools from a parsed pools-v2.json (a list of pool objects).

    Only mainnet addresses are kept (the upstream file carries a few testnet ones). An address
    claimed by two pools is dropped, since either attribution could be wrong.
    """
    if not isinstance(data, list):
        raise ValueError("pools-v2.json: expected a list of pools")
    owners: dict[str, str] = {}
    contested: set[str] = set()
    rejected: list[tuple[str, str]] = []
    for pool in data:
        name = normalise_entity(str(pool.get("name", ""))) if isinstance(pool, dict) else ""
        addresses = pool.get("addresses", []) if isinstance(pool, dict) else []
        if not name or not isinstance(addresses, list):
            rejected.append(("", f"malformed pool entry: {str(pool)[:80]}"))
            continue
        for raw in addresses:
            try:
                address = validate_address(str(raw).strip()).address
            except AddressError as exc:
                rejected.append((str(raw), str(exc)))
                continue
            previous = owners.setdefault(address, name)
            if entity_key(previous) != entity_key(name):
                contested.add(address)
    for address in sorted(contested):
        rejected.append((address, "claimed by more than one pool"))
    kept = [PoolAddress(a, n) for a, n in owners.items() if a not in contested]
    return PoolsV2Result(kept, rejected)


def load_pools_v2(path: str | Path = DEFAULT_POOLS_V2_PATH) -> list[PoolAddress]:
    """(address, pool name) pairs for the pools' mainnet payout addresses (kind miner)."""
    with open(path, encoding="utf-8") as handle:
        return parse_pools_v2(json.load(handle)).addresses
