"""Fixtures for the REST API tests: JWT-authenticated clients and whale rows."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from detection.models import WhaleTransaction

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SATS = 100_000_000
_txids = itertools.count(1)


def bearer(user) -> str:
    return f"Bearer {RefreshToken.for_user(user).access_token}"


@pytest.fixture
def anon():
    return APIClient()


@pytest.fixture
def client_for():
    """A JWT-authenticated client for a user, as an API caller would be."""

    def make(user) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=bearer(user))
        return client

    return make


@pytest.fixture
def api(alice, client_for):
    return client_for(alice)


def make_whale(**fields) -> WhaleTransaction:
    """A whale row with plausible defaults (filters and paging need many rows with chosen values;
    tests that need the full lifecycle go through detection.recording.record_event)."""
    number = next(_txids)
    btc = fields.pop("btc", 150)
    defaults = {
        "txid": f"{number:064x}",
        "value": int(btc * SATS),
        "transfer": int(btc * SATS),
        "moved": int(btc * SATS),
        "fee": 10_000,
        "vsize": 250,
        "weight": 1000,
        "fee_rate": 40.0,
        "first_seen_at": T0 - timedelta(minutes=number),
    }
    return WhaleTransaction.objects.create(**(defaults | fields))


def error_of(response) -> dict:
    """The API's one error shape, checked, returning its body."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"]) <= {"code", "message", "fields"}, body
    return body["error"]
