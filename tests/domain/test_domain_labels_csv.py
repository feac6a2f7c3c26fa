"""Label CSV parsing (every error, with line numbers) and the pools-v2.json loader."""

from __future__ import annotations

import json

import pytest

from detection.domain.labels import (
    LABEL_KINDS,
    MINER,
    POOLS_V2_SOURCE,
    Label,
    entity_key,
    normalise_entity,
)
from detection.domain.labels_csv import (
    DEFAULT_POOLS_V2_PATH,
    LabelCsvError,
    load_pools_v2,
    parse_label_csv,
    parse_label_csv_file,
    parse_pools_v2,
)

P2PKH = "11zro2wX8v6mkd99VuQShMrisZNLxYFNm"  # real, block 277647
P2SH = "39X1VyGXCjcZuah1uaLp1AFCKbew8zpu9B"  # real, block 702861
P2WPKH = "bc1qjk29nnnpxz9c3ukkqra6shq9rkczrzg9jv262w"  # real, block 702861
P2TR = "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"  # BIP-350 vector
BAD_CHECKSUM_P2PKH = "11zro2wX8v6mkd99VuQShMrisZNLxYFNn"  # last character changed


def errors_by_line(errors: list[LabelCsvError]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for error in errors:
        found.setdefault(error.line, []).append(f"{error.column}: {error.message}")
    return found


def test_good_file_with_bom_crlf_blank_lines_and_whitespace():
    text = (
        "\ufeffAddress , Entity,KIND,confidence\r\n"
        f"{P2PKH},  Example   Exchange ,exchange,0.9\r\n"
        "\r\n"
        f"  {P2SH} ,Example Custody,custodian,\r\n"
        "# a comment line\r\n"
        f"{P2WPKH.upper()},example exchange,Exchange,1\r\n"
        f"{P2TR},Some Pool,miner,0\r\n"
    )
    rows, errors = parse_label_csv(text.encode("utf-8"))
    assert errors == []
    assert [(r.line, r.address, r.entity, r.kind, r.confidence, r.address_kind) for r in rows] == [
        (2, P2PKH, "Example Exchange", "exchange", 0.9, "p2pkh"),
        (4, P2SH, "Example Custody", "custodian", 1.0, "p2sh"),
        # bech32 stored lower-case; entity spelt as on its first row
        (6, P2WPKH, "Example Exchange", "exchange", 1.0, "p2wpkh"),
        (7, P2TR, "Some Pool", "miner", 0.0, "p2tr"),
    ]
    assert rows[0].to_label("ops-2024") == Label("Example Exchange", "exchange", "ops-2024", 0.9)


def test_columns_in_any_order_and_confidence_optional():
    rows, errors = parse_label_csv(f"kind,address,entity\nexchange,{P2PKH},X\n")
    assert errors == []
    assert rows[0].confidence == 1.0


def test_every_bad_row_is_reported_with_its_line():
    text = "\n".join(
        [
            "address,entity,kind,confidence",  # 1
            f"{P2PKH},Good,exchange,0.5",  # 2
            f"{BAD_CHECKSUM_P2PKH},Bad Checksum,exchange,",  # 3
            f"{P2SH},,exchange,",  # 4 empty entity
            f"{P2WPKH},Kindless,bank,",  # 5 unknown kind
            f"{P2TR},Too Sure,exchange,1.5",  # 6
            f"{P2TR},Not A Number,exchange,high",  # 7
            f"{P2TR},NaN,exchange,nan",  # 8
            ",No Address,exchange,",  # 9
            "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7,Testnet,exchange,",  # 10
            f"{P2PKH},Good,exchange,0.5,extra",  # 11 too many fields
            "",
        ]
    )
    rows, errors = parse_label_csv(text)
    assert [r.line for r in rows] == [2]
    by_line = errors_by_line(errors)
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert "bad checksum" in by_line[3][0]
    assert by_line[4] == ["entity: empty"]
    assert "unknown kind 'bank'" in by_line[5][0]
    assert "outside 0..1" in by_line[6][0]
    assert "not a number" in by_line[7][0]
    assert "outside 0..1" in by_line[8][0]
    assert by_line[9] == ["address: empty"]
    assert "wrong network" in by_line[10][0]
    assert "5 fields, header has 4" in by_line[11][0]
    assert str(errors[0]).startswith("line 3, address: invalid address")


def test_one_row_can_carry_several_errors():
    _, errors = parse_label_csv(f"address,entity,kind,confidence\n{BAD_CHECKSUM_P2PKH},,bank,2\n")
    assert sorted(e.column for e in errors) == ["address", "confidence", "entity", "kind"]
    assert {e.line for e in errors} == {2}


def test_duplicates_identical_and_conflicting():
    text = (
        "address,entity,kind\n"
        f"{P2PKH},Alpha,exchange\n"
        f"{P2SH},Beta,exchange\n"
        f"{P2PKH},ALPHA,exchange\n"  # same entity, other case: still a duplicate
        f"{P2SH},Gamma,exchange\n"  # conflicting
        f"{P2WPKH.upper()},Delta,exchange\n"
        f"{P2WPKH},Delta,exchange\n"  # same address once canonicalised
    )
    rows, errors = parse_label_csv(text)
    assert [r.line for r in rows] == [2, 3, 6]
    by_line = errors_by_line(errors)
    assert "duplicate of line 2 (same entity)" in by_line[4][0]
    assert (
        "duplicate of line 3 (conflicting: 'Beta' (exchange) vs 'Gamma' (exchange))"
        in (by_line[5][0])
    )
    assert "duplicate of line 6 (same entity)" in by_line[7][0]


def test_header_problems():
    _, errors = parse_label_csv(f"address,entity,kind,confidance\n{P2PKH},A,exchange,0.2\n")
    assert len(errors) == 1 and errors[0].line == 1
    assert "unknown column(s) 'confidance'" in errors[0].message

    _, errors = parse_label_csv(f"address,entity\n{P2PKH},A\n")
    assert "missing required column(s) kind" in errors[0].message

    _, errors = parse_label_csv(f"{P2PKH},A,exchange\n")  # no header at all
    assert errors[0].line == 1

    _, errors = parse_label_csv("address,entity,kind,kind\n")
    assert "repeated column(s) kind" in errors[0].message

    _, errors = parse_label_csv("")
    assert "missing header row" in errors[0].message


def test_header_only_file_is_empty_not_an_error():
    assert parse_label_csv("address,entity,kind\n") == ([], [])


def test_undecodable_bytes():
    rows, errors = parse_label_csv(b"address,entity,kind\n\xff\xfe\n")
    assert rows == [] and errors[0].line == 0 and "not UTF-8" in errors[0].message


def test_entity_rules():
    long_name = "x" * 101
    _, errors = parse_label_csv(
        f"address,entity,kind\n{P2PKH},{long_name},exchange\n{P2SH},Bad\x07Bell,exchange\n"
    )
    assert [e.line for e in errors] == [2, 3]
    assert normalise_entity("  Coin \t Base  ") == "Coin Base"
    assert entity_key("Coin  BASE") == entity_key("coin base")


def test_quoted_fields_and_line_numbers_after_a_multiline_field():
    text = (
        "address,entity,kind\n"
        f'{P2PKH},"Example, Inc.",exchange\n'
        f'{P2SH},"Two\nLines",exchange\n'  # lines 3-4; entity whitespace collapses
        f"{BAD_CHECKSUM_P2PKH},After,exchange\n"  # line 5
    )
    rows, errors = parse_label_csv(text)
    assert [r.entity for r in rows] == ["Example, Inc.", "Two Lines"]
    assert [e.line for e in errors] == [5]


def test_parse_from_file(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_bytes(f"address,entity,kind\r\n{P2PKH},A,exchange\r\n".encode())
    result = parse_label_csv_file(path)
    assert result.ok and result.rows[0].address == P2PKH


def test_label_kinds_keep_the_design_list():
    assert {"exchange", "miner", "custodian", "other"} <= set(LABEL_KINDS)


def test_pools_v2_loader_on_the_shipped_file():
    pairs = load_pools_v2()
    raw = json.loads(DEFAULT_POOLS_V2_PATH.read_text())
    raw_mainnet = {a for p in raw for a in p["addresses"] if a.startswith(("1", "3", "bc1"))}
    assert {p.address for p in pairs} == raw_mainnet
    assert len(pairs) == 210  # 217 listed, 7 are testnet
    assert all(not p.address.startswith(("tb1", "m", "n", "2")) for p in pairs)
    by_address = dict(pairs)
    assert by_address["1PzVut5X6Nx7Mv4JHHKPtVM9Jr9LJ4Rbry"] == "BlockFills"
    assert by_address["bc1q39dled8an7enuxtmjql3pk7ny8kzvsxhd924sl"] == "Terra Pool"
    label = pairs[0].to_label()
    assert (label.kind, label.source, label.confidence) == (MINER, POOLS_V2_SOURCE, 1.0)


def test_pools_v2_rejects_testnet_bad_and_contested_addresses():
    data = [
        {"id": 1, "name": "Pool A", "addresses": [P2PKH, BAD_CHECKSUM_P2PKH, P2SH], "tags": []},
        {"id": 2, "name": "Pool B", "addresses": [P2SH, "mjP9Qw1Hpn4VpD3Yu2b3Mq6R1o4zzf1uSr"]},
        {"id": 3, "name": "pool a", "addresses": [P2PKH]},  # same pool, other case: no conflict
        {"id": 4, "addresses": [P2TR]},  # no name
    ]
    result = parse_pools_v2(data)
    assert result.addresses == [(P2PKH, "Pool A")]
    reasons = dict(result.rejected)
    assert "bad checksum" in reasons[BAD_CHECKSUM_P2PKH]
    assert reasons[P2SH] == "claimed by more than one pool"
    assert any("malformed" in why for _, why in result.rejected)
    with pytest.raises(ValueError):
        parse_pools_v2({"not": "a list"})
