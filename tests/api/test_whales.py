"""GET /api/v1/whales/ and /api/v1/whales/<txid>/: filters, validation, cursor pages, detail."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from detection.models import Flow, WhaleStatus, WhaleTransaction
from detection.recording import record_event
from tests.api.conftest import SATS, T0, error_of, make_whale
from tests.records.helpers import event, load_esplora, projection

pytestmark = pytest.mark.django_db

CONSOLIDATION_100 = "d385205568e5420bc73b190ede001678730d42744d0716d2c5c2b6467cf73082"


def txids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["txid"] for row in response.json()["results"]]


def test_list_shape_amounts_and_times(api):
    whale = make_whale(
        btc=123.45678901,
        transfer=100 * SATS,
        fee=None,
        fee_rate=None,
        flow=Flow.EXCHANGE_INFLOW,
        to_entity="Binance",
        first_seen_at=T0,
        latest_urgency=0.5,
    )
    body = api.get("/api/v1/whales/").json()
    assert set(body) == {"next", "previous", "results"}
    row = body["results"][0]
    assert row["txid"] == whale.txid and row["chain_txid"] == whale.txid
    assert (row["value_btc"], row["value_sat"]) == ("123.45678901", 12_345_678_901)
    assert (row["transfer_btc"], row["transfer_sat"]) == ("100.00000000", 100 * SATS)
    assert row["fee_btc"] is None and row["fee_sat"] is None and row["fee_rate"] is None
    assert row["first_seen_at"] == "2026-03-01T12:00:00Z"
    assert (row["from_entity"], row["to_entity"]) == (None, "Binance")
    assert row["latest_urgency"] == 0.5 and row["replaced_by"] is None
    assert "inputs" not in row  # the list stays light; the detail has them


def test_filters_each_narrow_the_list(api):
    small = make_whale(
        btc=100, flow=Flow.EXCHANGE_INFLOW, to_entity="Kraken", latest_urgency=0.2, first_seen_at=T0
    )
    big = make_whale(btc=5000, flow=Flow.EXCHANGE_OUTFLOW, from_entity="Binance", first_seen_at=T0)
    mid = make_whale(
        btc=750.5,
        flow=Flow.EXCHANGE_INFLOW,
        status=WhaleStatus.CONFIRMED,
        latest_urgency=0.9,
        first_seen_at=T0 - timedelta(days=3),
    )

    def get(query):
        return set(txids(api.get(f"/api/v1/whales/?{query}")))

    assert get("min_btc=750.5") == {big.txid, mid.txid}
    assert get("min_btc=750.50000001") == {big.txid}
    assert get("max_btc=750.5") == {small.txid, mid.txid}
    assert get("min_btc=200&flow=exchange_inflow") == {mid.txid}
    assert get("entity=Binance") == {big.txid}
    assert get("entity=Kraken") == {small.txid}
    # the one entity rule (detection.models.entity_is): the exact name, in any case
    assert get("entity=kraken") == {small.txid}
    assert get("entity=Krake") == set()
    assert get("status=confirmed") == {mid.txid}
    assert get("min_urgency=0.5") == {mid.txid}
    assert get("min_urgency=0") == {small.txid, mid.txid}  # no prediction: no urgency
    # the feed's urgency bands, through the same FilterSet
    assert get("urgency=unscored") == {big.txid}
    assert get("urgency=high") | get("urgency=medium") | get("urgency=low") == {
        small.txid,
        mid.txid,
    }
    since = (T0 - timedelta(days=1)).isoformat()
    assert get(f"since={since.replace('+00:00', 'Z')}") == {small.txid, big.txid}
    assert get("until=2026-02-27T00:00:00Z") == {mid.txid}
    assert get("since=2026-02-25&until=2026-02-27T00:00:00%2B00:00") == {mid.txid}
    # offsets PostgreSQL itself would refuse are fine: the API works in UTC
    assert get("since=2026-02-25T00:00:00-23:40&until=2026-02-27T00:00:00Z") == {mid.txid}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("flow=banana", "flow"),
        ("status=x", "status"),
        ("min_btc=abc", "min_btc"),
        ("min_btc=-1", "min_btc"),
        ("max_btc=1.123456789", "max_btc"),
        ("min_btc=NaN", "min_btc"),
        ("min_urgency=1.5", "min_urgency"),
        ("min_urgency=inf", "min_urgency"),
        ("urgency=extreme", "urgency"),
        ("since=notadate", "since"),
        ("until=2026-13-01", "until"),
        ("since=0001-01-01T00:00:00%2B05:00", "since"),
        ("entity=%00", "entity"),
        ("min_btc=10&max_btc=5", "max_btc"),
        ("since=2026-03-02&until=2026-03-01", "until"),
        ("entity=" + "x" * 101, "entity"),
        ("page_size=0", "page_size"),
        ("page_size=501", "page_size"),
        ("page_size=ten", "page_size"),
        ("cursor=garbage", "cursor"),
        ("min_bt=500", "min_bt"),
        ("flow=", "flow"),
        ("format=xml", "format"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(api, query, field):
    make_whale()
    response = api.get(f"/api/v1/whales/?{query}")
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == "invalid"
    assert list(error["fields"]) == [field]
    assert field in error["message"]


def _walk(api, url, seen_pages):
    response = api.get(url)
    body = response.json()
    seen_pages.append(txids(response))
    return body["next"]


def test_cursor_pages_have_no_duplicates_or_gaps_while_whales_arrive(api):
    # equal timestamps on purpose: the id breaks the tie
    originals = [make_whale(first_seen_at=T0 - timedelta(seconds=i // 3)).txid for i in range(25)]
    expected = [
        w.txid for w in WhaleTransaction.objects.order_by("-first_seen_at", "-id").only("txid")
    ]
    assert sorted(expected) == sorted(originals)
    pages: list[list[str]] = []
    url = _walk(api, "/api/v1/whales/?page_size=4", pages)
    arrivals = 0
    while url:
        # new whales land between fetches, newer than anything paged
        make_whale(first_seen_at=T0 + timedelta(minutes=arrivals + 1))
        arrivals += 1
        url = _walk(api, url, pages)
    walked = [txid for page in pages for txid in page]
    assert walked == expected
    assert all(len(page) == 4 for page in pages[:-1])
    assert arrivals == 6


def test_previous_link_pages_back_to_the_same_rows(api):
    for i in range(7):
        make_whale(first_seen_at=T0 - timedelta(minutes=i))
    first = api.get("/api/v1/whales/?page_size=3").json()
    assert first["previous"] is None
    second = api.get(first["next"]).json()
    back = api.get(second["previous"]).json()
    assert [r["txid"] for r in back["results"]] == [r["txid"] for r in first["results"]]
    assert back["previous"] is None
    assert back["next"] is not None


def test_cursor_links_keep_the_filters(api):
    for _ in range(3):
        make_whale(btc=500, flow=Flow.EXCHANGE_INFLOW)
    make_whale(btc=500, flow=Flow.EXCHANGE_OUTFLOW)
    first = api.get("/api/v1/whales/?flow=exchange_inflow&page_size=2").json()
    query = parse_qs(urlparse(first["next"]).query)
    assert query["flow"] == ["exchange_inflow"] and query["page_size"] == ["2"]
    second = api.get(first["next"]).json()
    assert len(second["results"]) == 1 and second["next"] is None


@pytest.fixture
def recorded_chain():
    """A real mainnet whale seen, bumped by an RBF replacement, the replacement confirmed."""
    old = load_esplora("whales_block_277647.esplora_txs.json")[CONSOLIDATION_100]
    new = dataclasses.replace(old, txid="ab" * 32, fee=90_000, effective_fee_rate=90_000 / 4223)
    record_event(event("seen", old, projection=projection(tip=277640, block=2)))
    record_event(
        event(
            "replaced",
            new,
            seq=1,
            at=1_700_000_100.0,
            chain_txid=old.txid,
            replaced_txid=old.txid,
            replacing_txid=new.txid,
            projection=projection(tip=277640, block=0, made_at=1_700_000_100.0),
        )
    )
    record_event(
        event(
            "confirmed",
            new,
            seq=2,
            at=1_700_000_700.0,
            block={"height": 277642, "hash": "00" * 32, "time": 1_700_000_650},
        )
    )
    return old.txid, new.txid


def test_detail_has_inputs_outputs_events_and_predictions(api, recorded_chain):
    _, new_txid = recorded_chain
    body = api.get(f"/api/v1/whales/{new_txid}/").json()
    assert body["txid"] == new_txid and body["status"] == "confirmed"
    assert body["chain_txid"] == CONSOLIDATION_100
    assert body["confirmed_height"] == 277642
    assert body["fee_btc"] == "0.00090000" and body["fee_sat"] == 90_000
    assert len(body["inputs"]) == 23 and body["outputs"]
    first_input = body["inputs"][0]
    assert first_input["value_btc"] == f"{first_input['value_sat'] / SATS:.8f}"
    assert [e["kind"] for e in body["events"]] == ["replaced", "confirmed"]
    assert "source" not in body["events"][0]["details"]
    [prediction] = body["predictions"]
    assert prediction["outcome"] == "confirmed" and prediction["band"] in ("high", "medium", "low")
    assert body["latest_urgency"] == prediction["urgency"]
    assert body["latest_txid"] == new_txid


def test_a_replaced_txid_resolves_to_its_own_row_with_its_chain(api, recorded_chain):
    old_txid, new_txid = recorded_chain
    response = api.get(f"/api/v1/whales/{old_txid.upper()}/")
    assert response.status_code == 200
    body = response.json()
    assert body["txid"] == old_txid and body["status"] == "replaced"
    assert body["replaced_by"] == new_txid and body["latest_txid"] == new_txid
    assert [(m["txid"], m["status"], m["replaced_by"]) for m in body["chain"]] == [
        (old_txid, "replaced", new_txid),
        (new_txid, "confirmed", None),
    ]
    assert [e["kind"] for e in body["events"]] == ["seen"]
    assert body["predictions"][0]["outcome"] == "replaced"


@pytest.mark.parametrize("txid", ["cd" * 32, "not-a-txid", "0" * 65])
def test_unknown_or_malformed_txid_is_404_in_the_error_shape(api, txid):
    response = api.get(f"/api/v1/whales/{txid}/")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_detail_refuses_unknown_parameters(api, recorded_chain):
    response = api.get(f"/api/v1/whales/{recorded_chain[0]}/?expand=all")
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == ["expand"]


def test_recording_keeps_latest_urgency_equal_to_the_latest_prediction(api):
    tx = load_esplora("whales_block_277647.esplora_txs.json")[CONSOLIDATION_100]
    record_event(event("seen", tx, projection=projection(tip=100, block=3)))
    whale = WhaleTransaction.objects.get(txid=tx.txid)
    first = whale.predictions.get().urgency
    assert whale.latest_urgency == first
    bumped = dataclasses.replace(tx, fee=2_000_000, effective_fee_rate=2_000_000 / 4223)
    record_event(
        event(
            "updated", bumped, seq=1, projection=projection(tip=100, block=0, made_at=1_700_000_060)
        )
    )
    whale.refresh_from_db()
    latest = whale.predictions.order_by("-made_at", "-id").first().urgency
    assert latest > first and whale.latest_urgency == latest
    assert txids(api.get(f"/api/v1/whales/?min_urgency={latest}")) == [tx.txid]
