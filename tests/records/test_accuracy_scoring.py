"""Issue 14's accuracy rules through the recording path: one scored outcome per chain, the
new hit rule in the stored rows and rollups, and the migration that rescored old rows."""

import importlib
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps as django_apps

from detection import stats
from detection.models import Prediction, PredictionHourlyOutcome, WhaleTransaction
from detection.recording import record_event
from tests.records.helpers import event, load_esplora, projection

pytestmark = pytest.mark.django_db

CONSOLIDATION_100 = "d385205568e5420bc73b190ede001678730d42744d0716d2c5c2b6467cf73082"
TIP = 277_640
BLOCK = {"height": TIP + 2, "hash": "00" * 32, "time": 1_388_400_000}


@pytest.fixture(scope="module")
def whale_tx():
    return load_esplora("whales_block_277647.esplora_txs.json")[CONSOLIDATION_100]


def rollup():
    return {
        row.band: (row.resolved, row.hits, row.error_sum, row.replaced, row.dropped)
        for row in PredictionHourlyOutcome.objects.all()
    }


def test_a_flapping_whale_is_scored_once_on_its_first_prediction(whale_tx):
    """Its projected block flaps 0 -> 5 -> 0 -> 5: four prediction rows, one scored outcome."""
    at = 1_700_000_000.0
    record_event(event("seen", whale_tx, at=at, projection=projection(tip=TIP, block=0)))
    for seq, block in enumerate((5, 0, 5), start=1):
        record_event(
            event(
                "updated",
                whale_tx,
                seq=seq,
                at=at + 60 * seq,
                projection=projection(tip=TIP, block=block, made_at=at + 60 * seq),
            )
        )
    record_event(event("confirmed", whale_tx, seq=4, at=at + 600, block=BLOCK))
    predictions = list(
        WhaleTransaction.objects.get(txid=whale_tx.txid).predictions.order_by("made_at")
    )
    assert [p.projected_block for p in predictions] == [0, 5, 0, 5]
    assert [p.scored for p in predictions] == [True, False, False, False]
    # every row is resolved for display, with the new rule: 2 blocks for "next block" is a hit
    assert [(p.actual_blocks, p.hit, p.abs_error) for p in predictions] == [
        (2, True, 1),
        (2, False, 4),
        (2, True, 1),
        (2, False, 4),
    ]
    band = predictions[0].band or "unscored"
    assert rollup() == {band: (1, 1, 1, 0, 0)}  # one outcome, not four
    assert rollup() == {k[1]: v for k, v in stats.outcome_sums(Prediction.objects.all()).items()}
    windows = stats.accuracy_windows()  # resolved_at is when the worker recorded it
    assert (windows["90d"].overall.resolved, windows["90d"].overall.hits) == (1, 1)


def test_the_migration_rescores_old_rows_and_rebuilds_the_rollups(whale_tx):
    at = 1_700_000_000.0
    record_event(event("seen", whale_tx, at=at, projection=projection(tip=TIP, block=0)))
    whale = WhaleTransaction.objects.get(txid=whale_tx.txid)
    resolved_at = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    # Rows as the old rules left them: every prediction scored, hit = actual <= predicted.
    Prediction.objects.filter(whale=whale).update(
        outcome="confirmed",
        predicted_blocks=5,
        actual_blocks=1,
        hit=True,
        abs_error=4,
        resolved_at=resolved_at,
        band="high",
    )
    Prediction.objects.create(
        whale=whale,
        made_at=resolved_at - timedelta(minutes=5),
        band="high",
        outcome="confirmed",
        predicted_blocks=8,
        actual_blocks=9,
        hit=False,
        abs_error=1,
        resolved_at=resolved_at,
        scored=True,
    )
    migration = importlib.import_module("detection.migrations.0005_i14_predictions")
    migration.rescore(django_apps, None)
    first, later = Prediction.objects.filter(whale=whale).order_by("made_at")
    assert (first.scored, first.hit, first.abs_error) == (True, False, 4)  # 4 blocks early
    assert (later.scored, later.hit, later.abs_error) == (False, True, 0)  # "8 or more": 9
    assert rollup() == {"high": (1, 0, 4, 0, 0)}
