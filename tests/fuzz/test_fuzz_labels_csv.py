"""Generated label files through the real `import_labels` command against PostgreSQL.

Each example builds a CSV file row by row, knowing which rows are good and which are broken (bad
checksums, testnet addresses, unknown kinds, out-of-range confidence, control characters, too
many fields, fields past the csv module's size limit, unclosed quotes, duplicates), in any mix of
BOM, CRLF, quoting, embedded newlines, blank and comment lines. The property is the command's
contract: either the import succeeds and the source's rows are exactly the good rows, or it fails
naming every bad line and nothing in the database changed.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from hypothesis import given
from hypothesis import strategies as st

from detection.domain.labels import LABEL_KINDS, entity_key, normalise_entity
from detection.models import AddressLabel

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "blocks"


def _real_addresses() -> list[str]:
    found = set()
    for name in (
        "whales_block_277647.esplora_txs.json",
        "whales_block_702861.esplora_txs_no_prevouts.json",
    ):
        for tx in json.loads((FIXTURES / name).read_text()):
            found |= {
                o["scriptpubkey_address"] for o in tx["vout"] if o.get("scriptpubkey_address")
            }
    return sorted(found)


ADDRESSES = _real_addresses()
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
TESTNET = "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7"
CSV_FIELD_LIMIT = 131_072  # csv.field_size_limit() default
SOURCE = "ops"

# What is already in the database before each import: one label the file may update, one of
# another source that no import under SOURCE may touch.
EXISTING = [
    (ADDRESSES[0], "Old Name", "other", 0.3, SOURCE),
    (ADDRESSES[1], "Someone Else", "exchange", 0.8, "other-source"),
]

entity_text = st.text(
    alphabet=st.sampled_from(list("abcXYZ019 ,\"'&.-") + ["é", "漢", "Ω", "💥", "ß"]),
    min_size=1,
    max_size=30,
).filter(lambda t: t.strip())


def canonical(address: str) -> str:
    return address.lower() if address.lower().startswith("bc1") else address


def broken_checksum(address: str, data) -> str:
    alphabet = BECH32 if address.lower().startswith("bc1") else BASE58
    last = address[-1].lower() if alphabet is BECH32 else address[-1]
    return address[:-1] + data.draw(st.sampled_from([c for c in alphabet if c != last]))


@dataclass
class Row:
    cells: list[str]
    problem: str | None = None  # None: a good row as written (it may still be a duplicate)
    quote: list[bool] = field(default_factory=list)
    fatal: bool = False  # stops the csv reader: nothing after it is looked at


def cell_text(value: str, quote: bool) -> str:
    if quote or any(c in value for c in ',"\n\r') or value != value.strip():
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def label_rows(draw, with_confidence: bool) -> Row:
    data = draw(st.data())
    address = draw(st.sampled_from(ADDRESSES))
    if address.lower().startswith("bc1") and draw(st.booleans()):
        address = address.upper()  # bech32 is case-insensitive; stored lower-cased
    entity = draw(entity_text)
    if draw(st.integers(0, 9)) == 0:
        entity = entity.replace(" ", "\n", 1)  # an embedded newline: one record, two lines
    kind = draw(st.sampled_from(LABEL_KINDS))
    kind = draw(st.sampled_from([kind, kind.upper(), kind.title()]))
    confidence = draw(st.sampled_from(["", "0", "1", "0.25", " 0.5 ", "1.0", "0.999"]))
    problem = draw(
        st.sampled_from(
            [None] * 8
            + [
                "checksum",
                "testnet",
                "garbage_address",
                "empty_address",
                "empty_entity",
                "long_entity",
                "control_entity",
                "kind",
                "confidence",
                "extra_field",
                "huge_field",
            ]
        )
    )
    if problem == "confidence" and not with_confidence:
        problem = "kind"
    if problem == "checksum":
        address = broken_checksum(address, data)
    elif problem == "testnet":
        address = TESTNET
    elif problem == "garbage_address":
        address = draw(st.text(alphabet="abcdef0123XYZ", min_size=1, max_size=40))
    elif problem == "empty_address":
        address = ""
    elif problem == "empty_entity":
        entity = draw(st.sampled_from(["", "   ", "\t"]))
    elif problem == "long_entity":
        entity = "x" * draw(st.integers(101, 5_000))
    elif problem == "control_entity":
        entity = draw(st.sampled_from(["Bad\x07Bell", "\x01", "Nul\x00Byte", "Esc\x1b[31m"]))
    elif problem == "kind":
        kind = draw(st.sampled_from(["volcano", "bank", "exchanges", ""]))
    elif problem == "confidence":
        confidence = draw(st.sampled_from(["1.5", "-0.1", "nan", "inf", "high", "1e9", "0x1"]))
    elif problem == "huge_field":
        entity = "y" * (CSV_FIELD_LIMIT + draw(st.integers(1, 50_000)))
    cells = [address, entity, kind] + ([confidence] if with_confidence else [])
    if problem == "extra_field":
        cells.append(draw(st.sampled_from(["", "0.5", "extra"])))
    quote = [draw(st.booleans()) for _ in cells]
    return Row(cells, problem, quote, fatal=problem == "huge_field")


@dataclass
class LabelFile:
    raw: bytes
    error_lines: set[int]
    rows: dict[str, tuple[str, str, float]]  # address -> (entity, kind, confidence)


@st.composite
def label_files(draw) -> LabelFile:
    with_confidence = draw(st.booleans())
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    header = ["address", "entity", "kind"] + (["confidence"] if with_confidence else [])
    header = [draw(st.sampled_from([h, h.upper(), f" {h} "])) for h in header]
    lines = [",".join(header)]
    line_no = 1
    error_lines: set[int] = set()
    expected: dict[str, tuple[str, str, float]] = {}
    spelling: dict[str, str] = {}
    stopped = False
    rows = draw(st.lists(label_rows(with_confidence), max_size=12))
    # Repeat some rows verbatim: duplicates are errors however they agree.
    for row in draw(st.lists(st.sampled_from(rows), max_size=3)) if rows else []:
        rows.insert(draw(st.integers(0, len(rows))), row)
    for row in rows:
        for _ in range(draw(st.integers(0, 1))):
            filler = draw(st.sampled_from(["", "# a comment, with a comma", " ,  , "]))
            lines.append(filler)
            line_no += 1
        text = ",".join(cell_text(c, q) for c, q in zip(row.cells, row.quote, strict=True))
        lines.append(text)
        start = line_no + 1
        line_no += 1 + sum(c.count("\n") for c in row.cells)
        if stopped:
            continue
        if row.fatal:
            error_lines.add(start)
            stopped = True
            continue
        if row.problem is not None:
            error_lines.add(start)
            continue
        address = canonical(row.cells[0])
        if address in expected:
            error_lines.add(start)
            continue
        entity = spelling.setdefault(entity_key(row.cells[1]), normalise_entity(row.cells[1]))
        confidence = row.cells[3].strip() if with_confidence else ""
        expected[address] = (entity, row.cells[2].lower(), float(confidence or 1.0))
    unclosed = draw(st.integers(0, 9)) == 0
    if unclosed and not stopped:
        lines.append(f'{ADDRESSES[2]},"never closed,exchange')
        error_lines.add(line_no + 1)
    text = newline.join(lines) + (newline if draw(st.booleans()) else "")
    bom = "\ufeff" if draw(st.booleans()) else ""
    return LabelFile((bom + text).encode("utf-8"), error_lines, expected)


def snapshot() -> dict[tuple[str, str], tuple[str, str, float]]:
    return {
        (label.address, label.source): (label.entity, label.kind, label.confidence)
        for label in AddressLabel.objects.all()
    }


def seed_existing() -> None:
    for address, entity, kind, confidence, source in EXISTING:
        AddressLabel.objects.create(
            address=address, entity=entity, kind=kind, confidence=confidence, source=source
        )


def run_import(path: Path) -> tuple[str, str, CommandError | None]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_labels", str(path), "--source", SOURCE, stdout=out, stderr=err)
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), exc
    return out.getvalue(), err.getvalue(), None


def reported_lines(path: Path, stderr: str) -> list[int]:
    lines = []
    for message in stderr.splitlines():
        match = re.match(rf"^{re.escape(str(path))}: line (\d+)(, \w+)?: .+", message)
        assert match, message
        lines.append(int(match.group(1)))
    return lines


@pytest.fixture
def labels_path(db, tmp_path):
    return tmp_path / "labels.csv"


@given(label_file=label_files())
def test_import_is_all_or_nothing_and_names_every_bad_line(labels_path, label_file):
    labels_path.write_bytes(label_file.raw)
    with transaction.atomic():
        seed_existing()
        before = snapshot()
        out, err, error = run_import(labels_path)
        after = snapshot()
        transaction.set_rollback(True)

    if label_file.error_lines:
        assert error is not None, out
        assert after == before
        lines = reported_lines(labels_path, err)
        assert set(lines) == label_file.error_lines
        assert str(error) == f"{len(lines)} bad row(s) in {labels_path}; nothing was imported"
        return

    assert error is None, err
    untouched = {k: v for k, v in before.items() if k[0] not in label_file.rows or k[1] != SOURCE}
    assert after == untouched | {(a, SOURCE): row for a, row in label_file.rows.items()}
    updated = int((ADDRESSES[0], SOURCE) in before and ADDRESSES[0] in label_file.rows)
    assert out.strip().endswith(
        f"imported {len(label_file.rows)} label(s) from {SOURCE!r} "
        f"({len(label_file.rows) - updated} new, {updated} updated)"
    )


@given(label_file=label_files(), data=st.data())
def test_bytes_that_are_not_utf8_name_their_line_and_write_nothing(labels_path, label_file, data):
    raw = label_file.raw
    at = data.draw(st.integers(0, len(raw)))
    junk = data.draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\x80"]))
    labels_path.write_bytes(raw[:at] + junk + raw[at:])
    with transaction.atomic():
        seed_existing()
        before = snapshot()
        _out, err, error = run_import(labels_path)
        after = snapshot()
        transaction.set_rollback(True)
    assert error is not None and after == before
    line = raw[:at].count(b"\n") + 1
    reason = _reason(raw[:at] + junk + raw[at:])
    assert err.splitlines() == [f"{labels_path}: file: not UTF-8: {reason} on line {line}"]
    assert str(error) == f"1 bad row(s) in {labels_path}; nothing was imported"


def _reason(raw: bytes) -> str:
    try:
        raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return exc.reason
    raise AssertionError("expected undecodable bytes")


def test_regression_unclosed_quote_is_a_csv_error_on_its_line(labels_path):
    """Found by fuzzing: an unclosed quote swallowed every later row into one field, and the
    report blamed a missing `kind` instead of the quote."""
    labels_path.write_text(
        "address,entity,kind\n"
        f"{ADDRESSES[2]},Fine,exchange\n"
        f'{ADDRESSES[3]},"never closed,exchange\n'
        f"{ADDRESSES[4]},Later,exchange\n"
    )
    _out, err, error = run_import(labels_path)
    assert err.splitlines() == [f"{labels_path}: line 3: malformed CSV: unexpected end of data"]
    assert error is not None and AddressLabel.objects.count() == 0


def test_regression_undecodable_file_says_which_line(labels_path):
    """Found by fuzzing: a stray non-UTF-8 byte was reported without any line to look at."""
    labels_path.write_bytes(
        f"address,entity,kind\n{ADDRESSES[2]},Caf\xe9,exchange\n".encode("latin-1")
    )
    _out, err, error = run_import(labels_path)
    assert err.splitlines() == [
        f"{labels_path}: file: not UTF-8: invalid continuation byte on line 2"
    ]
    assert error is not None and AddressLabel.objects.count() == 0
