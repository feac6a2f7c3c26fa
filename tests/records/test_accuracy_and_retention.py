import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from detection import stats
from detection.models import Prediction, WhaleEvent, WhaleTransaction
from detection.recording import record_event
from tests.records.helpers import event, load_esplora, projection

pytestmark = pytest.mark.django_db

TXID = "d385205568e5420bc73b190ede001678730d42744d0716d2c5c2b6467cf73082"


def make_whale(txid: str, **fields) -> WhaleTransaction:
    defaults = dict(value=10_000_000_000, transfer=10_000_000_000, vsize=200, weight=800)
    defaults.update(fields)
    return WhaleTransaction.objects.create(
        txid=txid, first_seen_at=defaults.pop("first_seen_at", timezone.now()), **defaults
    )


def scripted_block_sequence():
    """Ten whales predicted at tip 1000: six confirm within their prediction, four late."""
    tx = load_esplora("whales_block_277647.esplora_txs.json")[TXID]
    for n in range(10):
        import dataclasses

        whale_tx = dataclasses.replace(tx, txid=f"{n:064x}", fee=50_000 * (n + 1))
        record_event(
            event(
                "seen", whale_tx, at=1_700_000_000.0 + n, projection=projection(tip=1000, block=0)
            )
        )
        height = 1001 if n < 6 else 1003  # predicted 1 block; late ones waited 3
        record_event(
            event(
                "confirmed",
                whale_tx,
                seq=1,
                at=1_700_000_600.0 + n,
                block={"height": height, "hash": f"{height:064x}"},
            )
        )


def test_accuracy_arithmetic_on_scripted_blocks():
    scripted_block_sequence()
    windows = stats.accuracy_windows()
    day = windows["24h"].overall
    assert (day.resolved, day.hits) == (10, 6)
    assert day.hit_rate == pytest.approx(0.6)
    assert day.mean_abs_error == pytest.approx(4 * 2 / 10)
    assert windows["1h"].overall.resolved == 10
    assert sum(b.resolved for b in windows["24h"].by_band.values()) == 10
    assert stats.coverage() == {"mined": 10, "seen_first": 10, "coverage": 1.0}


def test_low_accuracy_mails_operators_once_per_hour(settings):
    settings.ADMINS = [("Ops", "ops@example.org")]
    scripted_block_sequence()
    # 6/10 is below 70 %, but 10 resolved is under the 20 minimum: no alarm yet.
    assert not stats.check_accuracy_alarm().alert
    for n in range(10, 20):
        whale = make_whale(f"{n:064x}")
        Prediction.objects.create(
            whale=whale,
            made_at=timezone.now(),
            tip_height=1000,
            predicted_blocks=1,
            outcome="confirmed",
            resolved_at=timezone.now(),
            actual_blocks=4,
            hit=False,
            abs_error=3,
        )
    now = datetime.now(tz=UTC).timestamp()
    assert stats.check_accuracy_alarm(now).alert
    assert len(mail.outbox) == 1
    assert "6 of 20" in mail.outbox[0].body
    assert stats.accuracy_alarm_state()["resolved"] == 20
    assert not stats.check_accuracy_alarm(now + 1800).alert  # within the hour
    assert stats.check_accuracy_alarm(now + 3700).alert
    assert len(mail.outbox) == 2


def test_purge_history_keeps_recent_and_pending():
    old = timezone.now() - timedelta(days=120)
    make_whale("a" * 64, first_seen_at=old, status="confirmed")
    make_whale("b" * 64, first_seen_at=old, status="pending")
    make_whale("c" * 64, status="confirmed")
    out = io.StringIO()
    call_command("purge_history", stdout=out)
    assert "deleted 1 whale(s)" in out.getvalue()
    assert set(WhaleTransaction.objects.values_list("txid", flat=True)) == {"b" * 64, "c" * 64}
    assert WhaleEvent.objects.count() == 0
