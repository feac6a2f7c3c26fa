"""GET /api/v1/whales/?format=csv: every matching row, streamed, newest first."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from detection.api.csv import HEADER
from detection.models import Flow
from tests.api.conftest import T0, error_of, make_whale

pytestmark = pytest.mark.django_db


def read_csv(response) -> list[dict]:
    assert response.status_code == 200, response.content
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_headers_and_content(api):
    whale = make_whale(
        btc=250.00000001,
        fee=None,
        fee_rate=None,
        flow=Flow.EXCHANGE_INFLOW,
        to_entity="Bitfinex",
        first_seen_at=T0,
        latest_urgency=0.75,
    )
    response = api.get("/api/v1/whales/?format=csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="whales-')
    assert response["Content-Disposition"].endswith('.csv"')
    [row] = read_csv(response)
    assert list(row) == HEADER
    assert row["txid"] == whale.txid and row["chain_txid"] == whale.txid
    assert (row["value_btc"], row["value_sat"]) == ("250.00000001", "25000000001")
    assert row["fee_btc"] == row["fee_sat"] == row["fee_rate"] == ""
    assert row["first_seen_at"] == "2026-03-01T12:00:00Z"
    assert (row["flow"], row["from_entity"], row["to_entity"]) == (
        "exchange_inflow",
        "",
        "Bitfinex",
    )
    assert row["latest_urgency"] == "0.75"


def test_csv_is_filtered_and_unpaged_in_list_order(api):
    expected = [
        make_whale(btc=300 + i, first_seen_at=T0 - timedelta(seconds=i)).txid for i in range(120)
    ]
    make_whale(btc=100, first_seen_at=T0)
    rows = read_csv(api.get("/api/v1/whales/?format=csv&min_btc=300&page_size=5"))
    assert [r["txid"] for r in rows] == expected


def test_accept_header_also_selects_csv(api):
    make_whale()
    response = api.get("/api/v1/whales/", HTTP_ACCEPT="text/csv")
    assert len(read_csv(response)) == 1


def test_csv_errors_are_json(api):
    response = api.get("/api/v1/whales/?format=csv&flow=banana")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert list(error_of(response)["fields"]) == ["flow"]


def test_formula_like_entities_are_defused(api):
    make_whale(from_entity='=HYPERLINK("http://evil")', to_entity="@SUM(A1)")
    [row] = read_csv(api.get("/api/v1/whales/?format=csv"))
    assert row["from_entity"] == '\'=HYPERLINK("http://evil")'
    assert row["to_entity"] == "'@SUM(A1)"


def test_empty_export_is_just_the_header(api):
    response = api.get("/api/v1/whales/?format=csv")
    assert b"".join(response.streaming_content).decode() == ",".join(HEADER) + "\r\n"
