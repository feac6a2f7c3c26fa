"""The whale list's hand-written row representation against DRF's generic one.

WhaleSerializer.to_representation writes each row's dict directly (the list request's main
Python cost was DRF walking 24 fields per row); the declared fields still define the schema.
Here both are run over rows covering every null and non-null case and must be identical, key
order included.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from rest_framework import serializers

from detection.api.serializers import WhaleSerializer
from detection.api.views import whale_rows
from detection.models import Flow, WhaleStatus
from tests.api.conftest import T0, make_whale

pytestmark = pytest.mark.django_db


def generic(row) -> dict:
    return serializers.ModelSerializer.to_representation(WhaleSerializer(), row)


def test_fast_rows_equal_drf_generic_rows(api):
    root = make_whale(btc=100.12345678, shape_tags=["consolidation", "batch"])
    make_whale(
        btc=0.00000001,
        chain=root,
        status=WhaleStatus.CONFIRMED,
        fee=None,
        fee_rate=None,
        effective_fee_rate=None,
        flow=Flow.EXCHANGE_INFLOW,
        from_entity="",
        to_entity="Binance",
        conflict=True,
        conflict_winner=False,
        latest_urgency=0.0,
        confirmed_height=938_112,
        confirmed_at=T0 + timedelta(microseconds=114_000),
        blocks_waited=0,
        seen_in_mempool=False,
    )
    replacement = make_whale(btc=21_000_000, fee=0, fee_rate=0.0, effective_fee_rate=44.25)
    root.replaced_by = replacement
    root.status = WhaleStatus.REPLACED
    root.conflict_winner = True
    root.save()
    make_whale(latest_urgency=1.0, from_entity="=cmd", to_entity="Kraken", transfer=0)

    rows = list(whale_rows().order_by("-first_seen_at", "-id"))
    assert len(rows) == 4
    for row in rows:
        fast = WhaleSerializer().to_representation(row)
        assert json.dumps(fast) == json.dumps(generic(row))
        assert list(fast) == WhaleSerializer.Meta.fields

    listed = api.get("/api/v1/whales/").json()["results"]
    assert listed == json.loads(json.dumps([generic(row) for row in rows]))
