"""Generated query strings for GET /api/v1/whales/ and /api/v1/stats/ through Django's client.

Values are drawn from three pools: values the API must accept, values it must refuse, and
arbitrary text (unicode, NUL, very long, percent signs) whose fate the test does not predict.
Parameters may repeat, be empty or be unknown. The contract: 200 or 400, never anything else;
a 400 is the one error shape, and it names the parameter that is wrong.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.api.conftest import bearer, make_whale

FILTERS = ("min_btc", "max_btc", "flow", "entity", "status", "min_urgency", "since", "until")

GOOD = {
    "min_btc": ["0", "100", "0.5", "1000.12345678", "21000000"],
    "max_btc": ["21000000", "20999999.99999999"],
    "flow": [
        "exchange_inflow",
        "exchange_outflow",
        "inter_exchange",
        "exchange_internal",
        "unknown",
    ],
    "entity": ["Binance", "Kraken", "x" * 100, "漢字 & Co.", "=1+1"],
    "status": ["pending", "confirmed", "replaced", "dropped"],
    "min_urgency": ["0", "0.4", "1", "1.0", "0.99999"],
    "since": ["2000-01-01T00:00:00Z", "2026-03-01T10:00:00+02:00", "2026-03-01T00:00:00-23:40"],
    "until": ["2099-01-01T00:00:00Z", "2027-03-01T12:00:00-05:00"],
    "page_size": ["1", "2", "50", "500"],
    "format": ["json", "csv"],
}
BAD = {
    "min_btc": ["abc", "-1", "1.123456789", "NaN", "Infinity", "21000000.00000001", "0x10"],
    "max_btc": ["-0.5", "1,5", "inf", "99999999999999999999"],
    "flow": ["banana", "EXCHANGE_INFLOW", "exchange_inflow "],
    "entity": ["x" * 101, "nul\x00byte"],
    "status": ["x", "Pending", "confirmed,pending"],
    "min_urgency": ["1.01", "-0.1", "nan", "inf", "high"],
    "since": ["notadate", "2026-13-01T00:00:00Z", "0001-01-01T00:00:00+05:00"],
    "until": ["yesterday", "9999-12-31T23:59:59-05:00", "2026-02-30"],
    "page_size": ["0", "501", "-1", "ten", "1.5"],
    "format": ["xml", "CSV", "api2"],
    "cursor": ["!!!", "e30", "bm90IGpzb24", "eyJ0IjoiIiwiaSI6MSwiZCI6Im4ifQ"],
}
STATS_GOOD = {"bucket": ["hour", "day"], "days": ["1", "7", "90"], "format": ["json"]}
STATS_BAD = {
    "bucket": ["week", "HOUR"],
    "days": ["0", "91", "-1", "seven", "1.5"],
    "format": ["csv", "x"],
}

wild_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789.-+eE:TZ ", max_size=30),
    st.sampled_from(["%", "%00", "\x00", "\ud7ff", "\u202e", "💥" * 50, "9" * 400, " ", "\t"]),
)
unknown_names = st.sampled_from(["min_bt", "MIN_BTC", "page", "limit", "txid", "q", "", "cursor "])


def cursor_of(payload: object) -> str:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


hostile_cursors = st.one_of(
    st.builds(
        cursor_of,
        st.fixed_dictionaries(
            {},
            optional={
                "t": st.one_of(
                    st.sampled_from(
                        [
                            "2026-03-01T12:00:00+00:00",
                            "0001-01-01T00:00:00+14:00",
                            "9999-12-31T23:59:59-14:00",
                            "2026-03-01T12:00:00",
                        ]
                    ),
                    st.text(max_size=30),
                    st.integers(),
                ),
                "i": st.one_of(
                    st.integers(min_value=-(2**70), max_value=2**70),
                    st.text(max_size=5),
                    st.floats(),
                ),
                "d": st.sampled_from(["n", "p", "x", None, 1]),
            },
        ),
    ),
    st.builds(cursor_of, st.binary(max_size=40)),
    st.text(max_size=60),
)


@st.composite
def whale_queries(draw, cursors: list[str]) -> list[tuple[str, str, str]]:
    """(name, value, intent) triples; intent is "good", "bad" or "wild"."""
    pairs = []
    for name in draw(st.lists(st.sampled_from(sorted(GOOD) + ["cursor"]), max_size=5, unique=True)):
        pool = draw(st.sampled_from(["good", "bad", "wild"]))
        if name == "cursor":
            choices = {"good": st.sampled_from(cursors), "bad": st.sampled_from(BAD["cursor"])}
            value = draw(choices.get(pool, hostile_cursors))
        elif pool == "wild":
            value = draw(wild_text)
        else:
            value = draw(st.sampled_from((GOOD if pool == "good" else BAD)[name]))
        pairs.append((name, value, pool))
    if draw(st.integers(0, 5)) == 0:
        pairs.append((draw(unknown_names), draw(wild_text), "unknown"))
    if pairs and draw(st.integers(0, 5)) == 0:
        index = draw(st.integers(0, len(pairs) - 1))
        pairs[index] = (pairs[index][0], "", "empty")
    if pairs and draw(st.integers(0, 7)) == 0:
        pairs.append((pairs[0][0], draw(wild_text), "repeated"))
    return draw(st.permutations(pairs))


def error_body(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "fields"}, error
    assert error["code"] == "invalid"
    assert error["message"] == "Invalid input: " + ", ".join(sorted(error["fields"]))
    assert error["fields"] and all(
        isinstance(messages, list) and messages and all(isinstance(m, str) and m for m in messages)
        for messages in error["fields"].values()
    ), error
    return error


def expected_refusal(pairs, allowed: frozenset[str], formats: set[str]) -> set[str] | None:
    """The parameters a 400 must name exactly, where that is certain; None when not.

    The checks run in a fixed order (format, unknown, repeated, empty), each refusing alone.
    """
    names = [name for name, _value, _intent in pairs]
    asked = [value for name, value, _intent in pairs if name == "format"]
    if asked and asked[-1] and asked[-1] not in formats:
        return {"format"}
    unknown = {name for name in names if name not in allowed}
    if unknown:
        return unknown
    repeated = {name for name in names if names.count(name) > 1}
    if repeated:
        return repeated
    empty = {name for name, value, _intent in pairs if value == ""}
    if empty:
        return empty
    return None


def check_response(response, pairs, allowed: frozenset[str], formats: set[str]) -> None:
    assert response.status_code in (200, 400), (response.status_code, response.content[:300])
    sent = {name for name, _value, _intent in pairs}
    exact = expected_refusal(pairs, allowed, formats)
    if response.status_code == 400:
        error = error_body(response)
        assert set(error["fields"]) <= sent, error
        if exact is not None:
            assert set(error["fields"]) == exact, error
        return
    assert exact is None, pairs
    # CSV is every matching row: cursor and page_size are documented as ignored there.
    ignored = {"cursor", "page_size"} if ("format", "csv", "good") in pairs else set()
    assert not any(i == "bad" and n not in ignored for n, _v, i in pairs), pairs


@pytest.fixture
def whale_client(db, alice, client, settings):
    settings.RATELIMIT_ENABLE = False
    make_whale(btc=100.5, flow="exchange_inflow", to_entity="Binance", latest_urgency=0.4)
    make_whale(btc=2500, fee=None, fee_rate=None, status="confirmed", confirmed_height=900_000)
    make_whale(btc=321.00000001, from_entity="Kraken", latest_urgency=0.95)
    client.defaults["HTTP_AUTHORIZATION"] = bearer(alice)
    return client


def real_cursors(client) -> list[str]:
    first = client.get("/api/v1/whales/?page_size=1").json()
    second = client.get(first["next"]).json()
    return [
        parse_qs(urlsplit(link).query)["cursor"][0] for link in (first["next"], second["previous"])
    ]


WHALE_PARAMS = frozenset({*GOOD, "cursor"})


@given(data=st.data())
def test_whale_list_answers_200_or_a_400_naming_the_parameter(whale_client, data):
    pairs = data.draw(whale_queries(real_cursors(whale_client)))
    response = whale_client.get("/api/v1/whales/?" + urlencode([(n, v) for n, v, _ in pairs]))
    check_response(response, pairs, WHALE_PARAMS, {"json", "csv", "api"})
    if response.status_code == 200:
        if ("format", "csv", "good") in pairs:
            assert response["Content-Type"].startswith("text/csv")
            assert b"".join(response.streaming_content).startswith(b"txid,chain_txid,status")
        else:
            body = response.json()
            assert set(body) == {"next", "previous", "results"}


@given(data=st.data())
def test_stats_answers_200_or_a_400_naming_the_parameter(whale_client, data):
    pairs = []
    for name in data.draw(st.lists(st.sampled_from(sorted(STATS_GOOD)), unique=True, max_size=3)):
        intent = data.draw(st.sampled_from(["good", "bad", "wild"]))
        pool = {"good": STATS_GOOD, "bad": STATS_BAD}.get(intent)
        value = data.draw(st.sampled_from(pool[name]) if pool else wild_text)
        pairs.append((name, value, intent))
    if data.draw(st.booleans()):
        pairs.append((data.draw(unknown_names), data.draw(wild_text), "unknown"))
    response = whale_client.get("/api/v1/stats/?" + urlencode([(n, v) for n, v, _ in pairs]))
    check_response(response, pairs, frozenset(STATS_GOOD), {"json", "api"})
    if response.status_code == 200:
        assert {"volumes", "totals", "accuracy", "coverage", "source"} <= set(response.json())


def test_regression_a_repeated_filter_is_refused_not_half_applied(whale_client):
    """Found by fuzzing: `flow=banana&flow=unknown` answered 200 filtered by the last value only,
    silently dropping the first."""
    response = whale_client.get("/api/v1/whales/?flow=banana&flow=unknown")
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid",
            "message": "Invalid input: flow",
            "fields": {"flow": ["Give this parameter once."]},
        }
    }


DELIVERY_GOOD = {
    "status": ["held", "pending", "sending", "delivered", "failed", "dead", "digested"],
    "channel": ["email", "webhook"],
    "format": ["json"],
}
DELIVERY_BAD = {
    "status": ["faild", "DEAD", "dead,failed"],
    "channel": ["sms", "Email"],
    "format": ["csv", "xml"],
    "cursor": ["!!!", "e30", "cD0yMDI2"],
}


@given(data=st.data())
def test_delivery_list_answers_200_or_a_400_naming_the_parameter(whale_client, data):
    pairs = []
    names = sorted({*DELIVERY_GOOD, "cursor"})
    for name in data.draw(st.lists(st.sampled_from(names), unique=True, max_size=3)):
        intent = data.draw(st.sampled_from(["good", "bad", "wild"]))
        pool = {"good": DELIVERY_GOOD, "bad": DELIVERY_BAD}.get(intent)
        if pool is not None and name not in pool:
            intent, pool = "bad", DELIVERY_BAD
        value = data.draw(st.sampled_from(pool[name]) if pool else wild_text)
        pairs.append((name, value, intent))
    if data.draw(st.integers(0, 3)) == 0:
        pairs.append((data.draw(unknown_names), data.draw(wild_text), "unknown"))
    response = whale_client.get("/api/v1/deliveries/?" + urlencode([(n, v) for n, v, _ in pairs]))
    check_response(response, pairs, frozenset({*DELIVERY_GOOD, "cursor"}), {"json", "api"})
    if response.status_code == 200:
        assert set(response.json()) == {"next", "previous", "results"}


@pytest.mark.parametrize(
    ("query", "field"),
    [("status=AAA", "status"), ("channel=sms", "channel"), ("cursor=!!!", "cursor")],
)
def test_regression_a_bad_delivery_filter_is_a_400_not_ignored(whale_client, query, field):
    """Found by schemathesis: `status=AAA` answered 200 with every delivery (the filter was
    dropped), and an unreadable cursor answered 404 as if the list did not exist."""
    response = whale_client.get(f"/api/v1/deliveries/?{query}")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {field}


@pytest.mark.parametrize(
    "position", ["2026", "2026-03-01 12:00:00", "0001-01-01 00:00:00+14:00", "\x00"]
)
def test_regression_a_forged_delivery_cursor_is_a_400_not_a_500(whale_client, position):
    """Found by fuzzing: a well-formed DRF cursor with a position that is not an aware datetime
    (`p=2026`) reached the created_at comparison and failed there, as a 500."""
    cursor = base64.b64encode(urlencode({"p": position}).encode()).decode()
    response = whale_client.get("/api/v1/deliveries/?" + urlencode({"cursor": cursor}))
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"cursor": ["Invalid cursor."]}


@pytest.mark.parametrize(
    ("query", "field"), [("page_size=4966", "page_size"), ("cursor=e30", "cursor")]
)
def test_regression_csv_export_still_refuses_a_bad_page_size_or_cursor(whale_client, query, field):
    """Found by `make fuzz` (schemathesis): with format=csv, page_size=4966 (schema maximum 500)
    was accepted because the export ignores paging; it is now refused like any bad value."""
    response = whale_client.get(f"/api/v1/whales/?format=csv&{query}")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {field}
