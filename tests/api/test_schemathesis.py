"""Property-based run of the OpenAPI schema (/api/schema/) against the app, with a JWT.

Every operation under /api/v1/ is exercised, the alerts endpoints included, as a user who owns
whales-visible data, subscriptions, webhook endpoints and deliveries. About half the generated
path parameters are swapped for ids of those real objects, so detail, update, delete, rotate,
test-send and redeliver run on rows that exist rather than only answering 404.

Every response must be a non-5xx that matches the schema: status code, content type, headers and
body. The one allowed 5xx is the health endpoint's documented 503: in this suite workers, beat and
the ingest are down, which is what it is for (it has its own tests).

Bounded for CI: SCHEMATHESIS_MAX_EXAMPLES per operation (default 6, derandomised so every run
sees the same cases). Under HYPOTHESIS_PROFILE=fuzz (`make fuzz`) the default is 300 and the
examples are random.
"""

from __future__ import annotations

import os
import zlib

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from alerts.models import ChatEndpoint, Delivery, DeliveryStatus
from tests.alerts.conftest import make_endpoint, make_subscription
from tests.api.conftest import bearer, make_whale
from tests.conftest import closed_port

FUZZING = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", 300 if FUZZING else 6))
ALL_PATHS = r"^/api/v1/"
HEALTH = "/api/v1/health/"


@schemathesis.check
def no_server_error_but_health_503(ctx, response, case):
    """not_a_server_error, except the health check's 503 that says which part is down."""
    if case.path == HEALTH and response.status_code == 503:
        return True
    return not_a_server_error(ctx, response, case)


CHECKS = [
    no_server_error_but_health_503,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


# Loaded at collection: schemathesis' lazy `from_fixture` loader does not work with pytest 9.2
# (it sets a node attribute pytest no longer has). The schema view needs no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application()).include(
    path_regex=ALL_PATHS
)


@pytest.fixture(autouse=True)
def in_process_app(db, settings):
    # Rate limits have their own tests; here they would only turn examples into 429s.
    settings.RATELIMIT_ENABLE = False
    # Test sends go to a closed local port: refused at once, no network, no waiting.
    settings.WHALE_OUTBOUND_ALLOW_LOOPBACK = True
    # The WSGI app runs in this thread on the test's connection, inside the test's transaction.
    # Like Django's test client, stop request signals from closing that connection.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def owned_objects(alice):
    """Real objects of alice's, by the path parameter that names them."""
    whales = [
        make_whale(btc=100.5, flow="exchange_inflow", to_entity="Binance", latest_urgency=0.4),
        make_whale(btc=2500, fee=None, fee_rate=None, status="confirmed", confirmed_height=900_000),
        make_whale(btc=321.00000001, from_entity="Kraken", shape_tags=["consolidation"]),
    ]
    endpoint = make_endpoint(alice, f"http://127.0.0.1:{closed_port()}/hook")
    subscription = make_subscription(alice, endpoints=[endpoint], name="Big ones")
    delivery = Delivery.objects.create(
        message_id="evt-1",
        owner=alice,
        channel="webhook",
        endpoint=endpoint,
        subscription=subscription,
        payload={"type": "whale.seen"},
        status=DeliveryStatus.DEAD,
        attempts=8,
    )
    chat = ChatEndpoint.objects.create(
        owner=alice, service="discord", url=f"http://127.0.0.1:{closed_port()}/api/webhooks/1/x"
    )
    return {
        "/api/v1/whales/{txid}/": [w.txid for w in whales],
        "/api/v1/chats/": [str(chat.public_id)],
        "/api/v1/subscriptions/": [str(subscription.public_id)],
        "/api/v1/webhooks/": [str(endpoint.public_id)],
        "/api/v1/deliveries/": [str(delivery.public_id)],
    }


def aim_at_real_objects(case, owned: dict[str, list[str]]) -> None:
    """Swap the generated id for a real one in about half the cases, chosen from the generated
    value itself so a derandomised run stays repeatable. Negative cases keep their broken ids:
    they exist to be refused."""
    if case.meta is not None and case.meta.generation.mode.is_negative:
        return
    for name, value in (case.path_parameters or {}).items():
        choice = zlib.crc32(str(value).encode())
        if choice % 2:
            continue
        for prefix, ids in owned.items():
            if case.path.startswith(prefix.split("{")[0]) and (name in prefix or name == "id"):
                case.path_parameters[name] = ids[choice // 2 % len(ids)]
                break


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    # The same examples on every run, so CI is repeatable; `make fuzz` searches at random.
    derandomize=not FUZZING,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(case, alice, owned_objects):
    aim_at_real_objects(case, owned_objects)
    case.call_and_validate(headers={"Authorization": bearer(alice)}, checks=CHECKS)


def test_regression_alerts_errors_and_status_codes_are_documented():
    """Found by widening this test to the alerts endpoints: their schema listed only the success
    answer (and 200 where the views answer 201 and 202), so every 400/404/409 was a violation."""
    responses = {
        (path, method): set(operation["responses"])
        for path, methods in schema.raw_schema["paths"].items()
        for method, operation in methods.items()
    }
    assert responses["/api/v1/subscriptions/", "post"] == {"201", "400", "401"}
    assert responses["/api/v1/subscriptions/{id}/", "patch"] == {"200", "400", "401", "404"}
    assert responses["/api/v1/webhooks/{id}/test/", "post"] == {"201", "401", "404"}
    assert responses["/api/v1/deliveries/{id}/redeliver/", "post"] == {"202", "401", "404", "409"}
    assert responses["/api/v1/deliveries/", "get"] == {"200", "400", "401"}


def test_regression_quiet_hours_are_documented_as_they_are_answered():
    """Found by `make fuzz`: quiet_start/quiet_end were documented as `format: time` (RFC 3339,
    seconds and offset) while the API answers "22:00", so every answer with quiet hours
    violated the schema."""
    properties = schema.raw_schema["components"]["schemas"]["Subscription"]["properties"]
    for name in ("quiet_start", "quiet_end"):
        assert "format" not in properties[name]
        assert properties[name]["pattern"] == r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$"
