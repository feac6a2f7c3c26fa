"""How many queries a new whale costs the worker, on the hot path from receipt to dashboard.

Counted inside the test's transaction, so the two SAVEPOINT/RELEASE statements of the outer
atomic block are included (in production they are BEGIN/COMMIT, which Django does not count).
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from detection.models import Prediction, WhaleEvent, WhaleHourlyVolume, WhaleTransaction
from detection.recording import record_event
from tests.records.helpers import event, load_esplora, projection

pytestmark = pytest.mark.django_db

CONSOLIDATION_100 = "d385205568e5420bc73b190ede001678730d42744d0716d2c5c2b6467cf73082"
MAX_QUERIES_PER_NEW_WHALE = 8


def test_a_new_whale_seen_is_recorded_in_at_most_8_queries(django_assert_max_num_queries):
    tx = load_esplora("whales_block_277647.esplora_txs.json")[CONSOLIDATION_100]
    payload = event("seen", tx, projection=projection(tip=277646))
    with django_assert_max_num_queries(MAX_QUERIES_PER_NEW_WHALE):
        result = record_event(payload)
    assert result.created
    whale = WhaleTransaction.objects.get(txid=CONSOLIDATION_100)
    prediction = Prediction.objects.get(whale=whale)
    assert whale.status == "pending" and whale.status_at is not None
    assert whale.latest_urgency == prediction.urgency is not None
    assert WhaleEvent.objects.get().pk == result.event_id
    assert WhaleHourlyVolume.objects.get().count == 1


def test_a_redelivered_seen_event_writes_nothing():
    tx = load_esplora("whales_block_277647.esplora_txs.json")[CONSOLIDATION_100]
    payload = event("seen", tx, projection=projection(tip=277646))
    record_event(payload)
    with CaptureQueriesContext(connection) as captured:
        again = record_event(payload)
    assert (again.created, again.reason) == (False, "duplicate event id")
    assert not [q for q in captured.captured_queries if q["sql"].startswith(("INSERT", "UPDATE"))]
    assert WhaleEvent.objects.count() == 1 and Prediction.objects.count() == 1
