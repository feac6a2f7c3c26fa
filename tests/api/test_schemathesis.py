"""Property-based run of the OpenAPI schema (/api/schema/) against the app, with a JWT.

Bounded (MAX_EXAMPLES per operation) so the suite stays quick. Every response must be a non-5xx
that matches the schema: status code, content type, headers and body. The health endpoint is left
out: it answers 503 by design when workers, beat or the ingest are down, as in this suite (it has
its own tests). The alerts endpoints are the alerts engineer's to fuzz; widen OUR_PATHS when they
want it.
"""

from __future__ import annotations

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

from tests.api.conftest import bearer, make_whale

MAX_EXAMPLES = 25
OUR_PATHS = r"^/api/v1/(auth/token/|auth/token/refresh/|whales/|whales/\{txid\}/|stats/)$"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


# Loaded at collection: schemathesis' lazy `from_fixture` loader does not work with pytest 9.2
# (it sets a node attribute pytest no longer has). The schema view needs no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application()).include(
    path_regex=OUR_PATHS
)


@pytest.fixture(autouse=True)
def in_process_app(db, settings):
    # Rate limits have their own tests; here they would only turn examples into 429s.
    settings.RATELIMIT_ENABLE = False
    # The WSGI app runs in this thread on the test's connection, inside the test's transaction.
    # Like Django's test client, stop request signals from closing that connection.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def some_whales(db):
    make_whale(btc=100.5, flow="exchange_inflow", to_entity="Binance", latest_urgency=0.4)
    make_whale(btc=2500, fee=None, fee_rate=None, status="confirmed", confirmed_height=900_000)
    make_whale(btc=321.00000001, from_entity="Kraken", shape_tags=["consolidation"])


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    # The same examples on every run, so CI is repeatable; a longer random run is for fuzzing.
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(case, alice, some_whales):
    case.call_and_validate(headers={"Authorization": bearer(alice)}, checks=CHECKS)
