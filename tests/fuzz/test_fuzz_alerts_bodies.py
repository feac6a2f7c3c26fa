"""Generated request bodies for the alerts API: subscriptions and webhook endpoints.

Bodies mix values the API must accept with hostile JSON (wrong types, huge numbers, unicode, NUL,
the other user's endpoint ids, lists where objects go), plus bodies that are not JSON at all.
The contract: 201/200 or 400; a 400 is the one error shape, names fields the body has (or the
required ones it lacks) and writes nothing; a 2xx stores exactly what the answer says. Webhook
URLs aimed at non-public addresses, in any spelling, are refused on the `url` field.
"""

from __future__ import annotations

import ipaddress
import json
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.test import APIClient

from alerts.http import normalise_url
from alerts.models import Subscription, WebhookEndpoint, sats_from_btc
from tests.alerts.conftest import make_endpoint, make_subscription
from tests.api.conftest import bearer

FLOWS = ["exchange_inflow", "exchange_outflow", "inter_exchange", "exchange_internal", "unknown"]
EVENTS = ["seen", "replaced", "confirmed", "dropped", "reorged"]

junk = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=30),
        st.sampled_from(["", " ", "\x00", "💥" * 60, "a|b", "x" * 300, "1e400", "NaN"]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)


def maybe_junk(strategy):
    return st.one_of(strategy, strategy, strategy, junk)


@st.composite
def subscription_bodies(draw, endpoint_ids: dict[str, str]) -> dict:
    fields = {
        "name": maybe_junk(st.text(min_size=1, max_size=110)),
        "active": maybe_junk(st.booleans()),
        "min_btc": maybe_junk(
            st.one_of(
                st.decimals(min_value=90, max_value=10**8, places=8).map(str),
                st.sampled_from(
                    ["100", 100, 250.5, "21000000", "99999999.99999999", "100.123456789"]
                ),
            )
        ),
        "max_btc": maybe_junk(
            st.one_of(st.none(), st.decimals(min_value=0, max_value=10**8, places=8).map(str))
        ),
        "flows": maybe_junk(st.lists(st.sampled_from(FLOWS), max_size=6)),
        "entities": maybe_junk(
            st.lists(
                st.one_of(st.text(max_size=20), st.sampled_from(["a|b", "x" * 101, " "])),
                max_size=60,
            )
        ),
        "min_urgency": maybe_junk(
            st.one_of(st.none(), st.floats(min_value=-0.5, max_value=1.5), st.sampled_from([0, 1]))
        ),
        "events": maybe_junk(st.lists(st.sampled_from(EVENTS), max_size=6)),
        "email": maybe_junk(st.booleans()),
        "webhooks": maybe_junk(
            st.lists(
                st.sampled_from(
                    [*endpoint_ids.values(), "not-a-uuid", "00000000-0000-0000-0000-000000000000"]
                ),
                max_size=3,
            )
        ),
        "quiet_start": maybe_junk(
            st.one_of(st.none(), st.sampled_from(["22:00", "07:30", "25:00", "noon"]))
        ),
        "quiet_end": maybe_junk(
            st.one_of(st.none(), st.sampled_from(["07:00", "23:59:59", "-1:00"]))
        ),
        "max_per_hour": maybe_junk(
            st.one_of(st.none(), st.integers(min_value=-5, max_value=2**40))
        ),
    }
    names = draw(st.lists(st.sampled_from(sorted(fields)), unique=True, max_size=len(fields)))
    body = {name: draw(fields[name]) for name in names}
    if draw(st.booleans()):
        # Most bodies should get past the required fields, so the deeper checks run.
        body.setdefault("name", "Whales")
        body.setdefault("min_btc", "150")
    return body


def snapshot() -> list[tuple]:
    rows = []
    for s in Subscription.objects.order_by("id").prefetch_related("webhooks"):
        rows.append(
            (
                s.public_id, s.owner_id, s.name, s.active, s.min_sats, s.max_sats,
                tuple(s.flows), tuple(s.entities), s.min_urgency, tuple(s.kinds), s.email,
                tuple(sorted(str(w.public_id) for w in s.webhooks.all())),
                s.quiet_start, s.quiet_end, s.max_per_hour,
            )
        )  # fmt: skip
    for e in WebhookEndpoint.objects.order_by("id"):
        rows.append((e.public_id, e.owner_id, e.url, e.description, e.active, e.secret))
    return rows


PARTNERS = {
    "quiet_start": ("quiet_end",),
    "quiet_end": ("quiet_start",),
    "min_btc": ("max_btc",),
    "max_btc": ("min_btc",),
}


def assert_error_shape(response, body, required: set[str]) -> dict:
    assert response.status_code == 400, (response.status_code, response.content[:300])
    payload = response.json()
    assert set(payload) == {"error"}
    error = payload["error"]
    if error["code"] == "parse_error":
        assert set(error) == {"code", "message"} and error["message"]
        return error
    assert set(error) == {"code", "message", "fields"}, error
    assert error["code"] == "invalid"
    assert error["message"] == "Invalid input: " + ", ".join(sorted(error["fields"]))
    named = set(body) if isinstance(body, dict) else set()
    # A rule across two fields may be reported on the partner the body left out.
    named |= {partner for name in set(named) for partner in PARTNERS.get(name, ())}
    assert set(error["fields"]) <= named | required | {"non_field_errors"}, (error, body)
    for messages in error["fields"].values():
        assert messages and all(isinstance(m, str) and m for m in messages), error
    return error


def as_text(value) -> str:
    # DRF's CharField takes numbers too, as their str(); strings are trimmed.
    return str(value).strip()


def assert_stored_as_answered(subscription: Subscription, answer: dict, body: dict) -> None:
    assert answer["id"] == str(subscription.public_id)
    assert answer["name"] == subscription.name
    assert answer["min_btc"] == f"{Decimal(subscription.min_sats) / 10**8:.8f}"
    if "name" in body:
        assert subscription.name == as_text(body["name"])
    if "min_btc" in body:
        assert subscription.min_sats == sats_from_btc(body["min_btc"])
    if body.get("max_btc") is not None:
        assert subscription.max_sats == sats_from_btc(body["max_btc"])
    if "flows" in body:
        assert subscription.flows == body["flows"]
    if "entities" in body:
        assert subscription.entities == [as_text(e) for e in body["entities"] if as_text(e)]
    if "events" in body:
        assert set(subscription.kinds) == set(body["events"])
    if "webhooks" in body:
        assert sorted(str(w.public_id) for w in subscription.webhooks.all()) == sorted(
            set(body["webhooks"])
        )
    for name in ("active", "email", "min_urgency", "max_per_hour"):
        if name in body:
            assert getattr(subscription, name) == body[name], name
    assert subscription.max_sats is None or subscription.max_sats >= subscription.min_sats
    assert subscription.email or subscription.webhooks.exists()


@pytest.fixture
def alerts_api(db, alice, bob, settings):
    settings.RATELIMIT_ENABLE = False
    settings.WHALE_OUTBOUND_ALLOW_LOOPBACK = False
    mine = make_endpoint(alice, "https://hooks.example.org/alice")
    theirs = make_endpoint(bob, "https://hooks.example.org/bob")
    existing = make_subscription(alice, endpoints=[mine], name="Existing")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(alice))
    client.ids = {"mine": str(mine.public_id), "theirs": str(theirs.public_id)}
    client.existing = existing
    return client


def send(client, method: str, url: str, body) -> object:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return getattr(client, method)(url, raw, content_type="application/json")


@given(data=st.data())
def test_create_subscription_is_201_exactly_as_sent_or_400_writing_nothing(alerts_api, data):
    body = data.draw(subscription_bodies(alerts_api.ids))
    with transaction.atomic():
        before = snapshot()
        response = send(alerts_api, "post", "/api/v1/subscriptions/", body)
        if response.status_code == 201:
            created = Subscription.objects.get(public_id=response.json()["id"])
            assert_stored_as_answered(created, response.json(), body)
            assert len(snapshot()) == len(before) + 1
            assert alerts_api.ids["theirs"] not in set(body.get("webhooks") or [])
        else:
            assert_error_shape(response, body, required={"name", "min_btc"})
            assert snapshot() == before
        transaction.set_rollback(True)


@given(data=st.data(), method=st.sampled_from(["patch", "put"]))
def test_update_subscription_is_200_as_sent_or_400_changing_nothing(alerts_api, data, method):
    body = data.draw(subscription_bodies(alerts_api.ids))
    url = f"/api/v1/subscriptions/{alerts_api.existing.public_id}/"
    with transaction.atomic():
        before = snapshot()
        response = send(alerts_api, method, url, body)
        if response.status_code == 200:
            updated = Subscription.objects.get(pk=alerts_api.existing.pk)
            assert_stored_as_answered(updated, response.json(), body)
        else:
            required = {"name", "min_btc"} if method == "put" else set()
            assert_error_shape(response, body, required=required)
            assert snapshot() == before
        transaction.set_rollback(True)


@given(
    raw=st.one_of(
        st.binary(max_size=60),
        st.sampled_from(
            [b"", b"{", b'{"name": "x",}', b"NaN", b'{"min_btc": Infinity}', b"\xff\xfe"]
        ),
        st.builds(lambda v: json.dumps(v).encode(), junk),
    ),
    url=st.sampled_from(["/api/v1/subscriptions/", "/api/v1/webhooks/"]),
)
def test_bodies_that_are_not_a_json_object_are_400_writing_nothing(alerts_api, raw, url):
    with transaction.atomic():
        before = snapshot()
        response = send(alerts_api, "post", url, raw)
        error = assert_error_shape(response, None, required={"name", "min_btc", "url"})
        assert error["code"] in ("parse_error", "invalid")
        assert snapshot() == before
        transaction.set_rollback(True)


BLOCKED_NETWORKS = [
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
    "100.64.0.0/10", "0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4",
    "::1/128", "fe80::/10", "fc00::/7", "ff00::/8",
]  # fmt: skip


@st.composite
def blocked_hosts(draw) -> str:
    network = ipaddress.ip_network(draw(st.sampled_from(BLOCKED_NETWORKS)))
    address = network[draw(st.integers(0, network.num_addresses - 1))]
    if address.version == 6:
        return f"[{address}]"
    spelling = draw(
        st.sampled_from(["plain", "mapped", "decimal", "hex", "octal", "dot", "fullwidth", "ideo"])
    )
    text = str(address)
    if spelling == "mapped":
        return f"[::ffff:{text}]"
    if spelling == "decimal":
        return str(int(address))
    if spelling == "hex":
        return hex(int(address))
    if spelling == "octal":
        return ".".join(f"0{int(part):o}" for part in text.split("."))
    if spelling == "dot":
        return text + "."
    if spelling == "fullwidth":
        return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else "\uff0e" for c in text)
    if spelling == "ideo":
        return text.replace(".", "\u3002")
    return text


PUBLIC = ["hooks.example.org", "8.8.8.8", "1.1.1.1", "[2606:4700:4700::1111]", "api.example.com"]
public_hosts = st.sampled_from(PUBLIC)


@given(
    host=st.one_of(blocked_hosts(), public_hosts),
    scheme=st.sampled_from(["http", "https"]),
    port=st.sampled_from(["", ":443", ":8080"]),
    path=st.sampled_from(["/", "/hook?x=1", "/é/💥", ""]),
    description=st.one_of(st.just(""), st.text(max_size=50)),
)
def test_webhook_urls_to_non_public_addresses_are_refused_on_url(
    alerts_api, host, scheme, port, path, description
):
    url = f"{scheme}://{host}{port}{path}"
    body = {"url": url, "description": description}
    with transaction.atomic():
        before = snapshot()
        response = send(alerts_api, "post", "/api/v1/webhooks/", body)
        is_public = host in PUBLIC
        if is_public and "\x00" not in description:
            assert response.status_code == 201, response.json()
            endpoint = WebhookEndpoint.objects.get(public_id=response.json()["id"])
            # Saved as it will be sent: IDNA host, percent-encoded path (alerts.http).
            expected = (normalise_url(url), description.strip())
            assert (endpoint.url, endpoint.description) == expected
            assert response.json()["secret"] == endpoint.secret
        else:
            error = assert_error_shape(response, body, required=set())
            if not is_public:
                assert "url" in error["fields"], error
                (message,) = error["fields"]["url"]
                assert "public address" in message or "plain dotted form" in message, message
            assert snapshot() == before
        transaction.set_rollback(True)


@pytest.mark.parametrize(
    "host", ["127.0.0.1.", "2130706433.", "１２７．０．０．１", "127。0。0。1", "169.254.169.254."]
)
def test_regression_loopback_and_metadata_spellings_are_refused(alerts_api, host):
    """Found by fuzzing: a trailing root dot or full-width/ideographic digits and dots slipped
    past the save-time check (the resolver reads them all as the plain address)."""
    response = send(alerts_api, "post", "/api/v1/webhooks/", {"url": f"http://{host}/hook"})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"url"}
    assert WebhookEndpoint.objects.count() == 2


def test_regression_repeated_flows_are_a_400_not_a_500(alerts_api):
    """Found by `make fuzz` (schemathesis): 18 flows with repeats passed validation (the list is
    short) but their stored form overflowed the 200-character column: a 500 from the database."""
    url = f"/api/v1/subscriptions/{alerts_api.existing.public_id}/"
    before = snapshot()
    response = send(alerts_api, "patch", url, {"flows": ["inter_exchange", "unknown"] * 9})
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid",
            "message": "Invalid input: flows",
            "fields": {"flows": ["Give each flow at most once."]},
        }
    }
    assert snapshot() == before
