"""The stats rollups (WhaleHourlyVolume, PredictionHourlyOutcome) against the raw rows.

Events go through the real detection.recording code into PostgreSQL; the rollups must then equal
a fresh SQL aggregate of the whale and prediction rows, and the API's accuracy windows must equal
the domain's Python computation, after any sequence of events, a retention purge or a backfill.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import itertools
from datetime import UTC, datetime, timedelta

import hypothesis
import pytest
import time_machine
from django.apps import apps as django_apps
from django.core.management import call_command
from django.db.models import F
from hypothesis import given
from hypothesis import strategies as st

from detection import stats
from detection.api.stats import accuracy_windows
from detection.models import (
    AddressLabel,
    Block,
    Flow,
    Prediction,
    PredictionHourlyOutcome,
    PredictionOutcome,
    WhaleHourlyCoverage,
    WhaleHourlyVolume,
    WhaleStatus,
    WhaleTransaction,
)
from detection.recording import record_event
from detection.retention import purge_history
from detection.tasks import rebuild_recent_stats_rollups
from tests.records.helpers import event, load_esplora, projection

pytestmark = pytest.mark.django_db

BASE = datetime(2026, 3, 1, 10, 37, 12, 345_678, tzinfo=UTC)
TIP = 1000
CONSOLIDATION = "d385205568e5420bc73b190ede001678730d42744d0716d2c5c2b6467cf73082"
TO_EXCHANGE = "5143ba5524d21b646de5cd5a1ab6ee7b7823a59c87a347d3b5339e9f977e7dcd"
FROM_EXCHANGE = "712db987272743dd6e02bdd00fd8a0718bbfd04d13495a97eb70cdc42c010b1e"
_seq = itertools.count(1)


def _pool():
    """Five whales of three flows: the fixture's three and two fee-bumped copies."""
    txs = load_esplora("whales_block_277647.esplora_txs.json")
    base = [
        dataclasses.replace(txs[txid], first_seen=None)
        for txid in (CONSOLIDATION, TO_EXCHANGE, FROM_EXCHANGE)
    ]
    copies = [
        dataclasses.replace(base[0], txid="ab" * 32, fee=base[0].fee + 40_000),
        dataclasses.replace(base[1], txid="cd" * 32, fee=(base[1].fee or 0) + 90_000),
    ]
    return base + copies


POOL = _pool()


@pytest.fixture
def exchange_labels():
    # One labelled payee and one labelled payer, so the whales fall into three flows.
    AddressLabel.objects.create(
        address="18G8FYzrQh3AXFTBiSrU8ibRgmcqSXnwpW", entity="Binance", kind="exchange", source="t"
    )
    AddressLabel.objects.create(
        address="15EkbmW2HCkyFkFc5inn88VLecaY5q2pBk", entity="Kraken", kind="exchange", source="t"
    )


def rollup_rows(model) -> dict[tuple, tuple]:
    rows = {}
    for row in model.objects.values():
        key = tuple(row[f] for f in model.KEY)
        sums = tuple(row[f] for f in model.SUMS)
        if any(sums):
            rows[key] = sums
    return rows


def assert_rollups_match_the_rows() -> None:
    assert rollup_rows(WhaleHourlyVolume) == stats.volume_sums(WhaleTransaction.objects.all())
    assert rollup_rows(WhaleHourlyCoverage) == stats.coverage_sums(WhaleTransaction.objects.all())
    assert rollup_rows(PredictionHourlyOutcome) == stats.outcome_sums(Prediction.objects.all())


def assert_accuracy_equals_the_domain(now: datetime) -> None:
    ours = accuracy_windows(now)
    reference = stats.accuracy_windows(now.timestamp())
    for name, window in reference.items():
        overall = dataclasses.asdict(window.overall)
        overall.pop("band")
        assert ours[name]["overall"] == overall, name
        for band, figures in window.by_band.items():
            expected = dataclasses.asdict(figures)
            expected.pop("band")
            assert ours[name]["by_band"][band] == expected, (name, band)


def block(choice: int) -> dict:
    height = TIP + 1 + choice
    return {"height": height, "hash": f"{height:060x}{choice:04x}", "time": None}


def apply(kind: str, tx_index: int, other_index: int, block_choice: int, at: datetime, pb: int):
    """One lifecycle event, recorded with the clock at `at` (predictions resolve at `now`)."""
    tx, other = POOL[tx_index], POOL[other_index]
    observed = at.timestamp()
    guess = projection(tip=TIP, block=None if pb < 0 else pb, made_at=observed)
    extra: dict = {}
    if kind in ("seen", "updated"):
        extra["projection"] = guess
        if kind == "updated":
            tx = dataclasses.replace(tx, fee=(tx.fee or 0) + 1000 * (block_choice + 1))
    elif kind == "replaced":
        extra.update(
            chain_txid=other.txid,
            replaced_txid=other.txid,
            replacing_txid=tx.txid,
            projection=guess,
        )
    elif kind == "confirmed":
        extra["block"] = block(block_choice)
    elif kind == "reorged" and block_choice < 3:
        extra["block"] = block(block_choice)  # otherwise: the whale's own block
    elif kind == "confirmed_unknown":
        kind = "confirmed"  # a resync answer: confirmed, block not said
    elif kind == "confirmations":
        extra["confirmations"] = 6
    with time_machine.travel(at, tick=False):
        record_event(event(kind, tx, seq=next(_seq), at=observed, **extra))


KINDS = [
    "seen",
    "updated",
    "replaced",
    "dropped",
    "confirmed",
    "confirmed_unknown",
    "reorged",
    "confirmations",
]
# Kinds weighted towards what resolves predictions; two of the five whales take most events,
# so sequences about one whale (seen, bumped, replaced, confirmed, reorged) are common.
WHALE = st.one_of(st.integers(0, 1), st.integers(0, len(POOL) - 1))
STEPS = st.lists(
    st.tuples(
        st.sampled_from([*KINDS, "seen", "seen", "confirmed", "confirmed", "replaced", "dropped"]),
        WHALE,
        WHALE,
        st.integers(0, 3),
        # out of order on purpose: observations up to 30 hours apart, in any order
        st.integers(0, 30 * 60),
        st.integers(-1, 3),
    ),
    min_size=3,
    max_size=25,
)


@hypothesis.settings(max_examples=60)
@given(steps=STEPS)
def test_rollups_equal_the_rows_after_any_event_sequence(exchange_labels, steps):
    WhaleTransaction.objects.all().delete()
    Block.objects.all().delete()
    WhaleHourlyVolume.objects.all().delete()
    WhaleHourlyCoverage.objects.all().delete()
    PredictionHourlyOutcome.objects.all().delete()
    for kind, tx_index, other_index, block_choice, minutes, pb in steps:
        apply(kind, tx_index, other_index, block_choice, BASE + timedelta(minutes=minutes), pb)
    assert_rollups_match_the_rows()
    outcomes = rollup_rows(PredictionHourlyOutcome).values()
    for index, name in enumerate(PredictionHourlyOutcome.SUMS):
        hypothesis.event(f"{name} in the rollup: {any(sums[index] for sums in outcomes)}")
    for hours in (1, 7, 31):
        assert_accuracy_equals_the_domain(BASE + timedelta(hours=hours, seconds=17))
    for minutes in (0, 59, 61, 600):
        since = BASE + timedelta(minutes=minutes)
        assert stats.rolled_up_coverage(since) == stats.coverage(since)


def test_a_lifecycle_moves_exact_sums_between_rows(exchange_labels):
    """seen → replaced → confirmed → reorged, with the rows checked figure by figure."""
    old, new = POOL[0], POOL[3]  # new is old with a higher fee: a fee bump
    seen_at = BASE
    apply("seen", 0, 0, 0, seen_at, 0)
    hour = seen_at.replace(minute=0, second=0, microsecond=0)
    flow = WhaleTransaction.objects.get(txid=old.txid).flow
    assert rollup_rows(WhaleHourlyVolume) == {(hour, flow): (1, old.value, old.transfer)}

    replaced_at = BASE + timedelta(hours=2)
    apply("replaced", 3, 0, 0, replaced_at, 0)
    new_hour = hour + timedelta(hours=2)
    # the replaced whale leaves the volumes, its replacement carries the money
    assert rollup_rows(WhaleHourlyVolume) == {(new_hour, flow): (1, new.value, new.transfer)}
    band = _band_of(old.txid)
    assert rollup_rows(PredictionHourlyOutcome) == {(new_hour, band): (0, 0, 0, 1, 0)}

    confirmed_at = BASE + timedelta(hours=5)
    apply("confirmed", 3, 3, 2, confirmed_at, 0)  # height TIP + 3
    prediction = Prediction.objects.get(whale__txid=new.txid)
    assert prediction.outcome == PredictionOutcome.CONFIRMED and prediction.actual_blocks == 3
    confirmed_hour = hour + timedelta(hours=5)
    # confirmed_at is the block's time, or the observation when the block has none
    assert rollup_rows(WhaleHourlyCoverage) == {(confirmed_hour,): (1, 1)}
    # One scored outcome per chain: the chain's first prediction (the replaced tx's). The
    # replacement's prediction is kept for display and adds nothing to the accuracy sums.
    assert not prediction.scored
    assert Prediction.objects.get(whale__txid=old.txid).scored
    assert rollup_rows(PredictionHourlyOutcome) == {(new_hour, band): (0, 0, 0, 1, 0)}

    apply("reorged", 3, 3, 2, confirmed_at + timedelta(minutes=20), 0)
    assert WhaleTransaction.objects.get(txid=new.txid).status == WhaleStatus.PENDING
    assert rollup_rows(WhaleHourlyCoverage) == {}
    assert rollup_rows(PredictionHourlyOutcome) == {(new_hour, band): (0, 0, 0, 1, 0)}
    assert rollup_rows(WhaleHourlyVolume) == {(new_hour, flow): (1, new.value, new.transfer)}
    assert_rollups_match_the_rows()


def _band_of(txid: str) -> str:
    return Prediction.objects.get(whale__txid=txid).band or "unscored"


def test_the_three_flows_land_in_their_own_rows(exchange_labels):
    for index in range(3):
        apply("seen", index, index, 0, BASE + timedelta(minutes=index), 0)
    flows = {row[1] for row in rollup_rows(WhaleHourlyVolume)}
    assert flows == {Flow.UNKNOWN, Flow.EXCHANGE_INFLOW, Flow.EXCHANGE_OUTFLOW}
    assert_rollups_match_the_rows()


def test_purge_takes_its_whales_out_of_the_rollups(exchange_labels):
    now = datetime.now(tz=UTC)
    old = now - timedelta(days=40)
    apply("seen", 0, 0, 0, old, 0)
    apply("confirmed", 0, 0, 1, old + timedelta(minutes=30), 0)
    apply("seen", 1, 1, 0, old, 0)
    apply("replaced", 4, 1, 0, old + timedelta(minutes=5), 0)  # a whole old chain
    apply("dropped", 4, 4, 0, old + timedelta(minutes=50), 0)
    apply("seen", 2, 2, 0, now - timedelta(hours=3), 0)  # recent: stays
    apply("confirmed", 2, 2, 0, now - timedelta(hours=2), 0)
    recent = POOL[2]
    recent_hour = stats.hour_of(now - timedelta(hours=3))
    recent_prediction = Prediction.objects.get(whale__txid=recent.txid)
    recent_outcome = stats.outcome_contribution(
        **{f: getattr(recent_prediction, f) for f in stats_fields()}
    )
    assert len(rollup_rows(WhaleHourlyVolume)) == 3  # two old whales (one replaced), one recent

    result = purge_history(30)

    assert result.whales == 3
    flow = WhaleTransaction.objects.get(txid=recent.txid).flow
    assert rollup_rows(WhaleHourlyVolume) == {
        (recent_hour, flow): (1, recent.value, recent.transfer)
    }
    assert rollup_rows(PredictionHourlyOutcome) == dict([recent_outcome])
    assert rollup_rows(WhaleHourlyCoverage) == {(stats.hour_of(now - timedelta(hours=2)),): (1, 1)}
    assert_rollups_match_the_rows()


def stats_fields() -> tuple[str, ...]:
    return ("resolved_at", "band", "outcome", "predicted_blocks", "actual_blocks")


def test_backfill_migration_rebuilds_what_recording_kept(exchange_labels):
    steps = [
        ("seen", 0, 0, 0, 0, 0),
        ("seen", 1, 1, 0, 70, 1),
        ("replaced", 3, 0, 0, 95, 0),
        ("confirmed", 3, 3, 1, 190, 0),
        ("confirmed", 1, 1, 3, 200, 0),
        ("seen", 2, 2, 0, 250, -1),
        ("dropped", 2, 2, 0, 400, 0),
        ("seen", 4, 4, 0, 410, 2),
        ("confirmed_unknown", 4, 4, 0, 500, 0),
    ]
    for kind, tx_index, other_index, block_choice, minutes, pb in steps:
        apply(kind, tx_index, other_index, block_choice, BASE + timedelta(minutes=minutes), pb)
    kept_volumes = rollup_rows(WhaleHourlyVolume)
    kept_outcomes = rollup_rows(PredictionHourlyOutcome)
    kept_coverage = rollup_rows(WhaleHourlyCoverage)
    assert kept_coverage
    assert len(kept_volumes) >= 3 and len(kept_outcomes) >= 2
    WhaleHourlyVolume.objects.all().delete()
    WhaleHourlyCoverage.objects.all().delete()
    PredictionHourlyOutcome.objects.all().delete()

    migration = importlib.import_module("detection.migrations.0005_i14_predictions")
    migration.rescore(django_apps, None)

    assert rollup_rows(WhaleHourlyVolume) == kept_volumes
    assert rollup_rows(PredictionHourlyOutcome) == kept_outcomes
    assert rollup_rows(WhaleHourlyCoverage) == kept_coverage
    # a second run replaces rather than adds
    migration.rescore(django_apps, None)
    assert rollup_rows(WhaleHourlyVolume) == kept_volumes


def test_rebuild_command_repairs_rollups_after_a_hand_edit(exchange_labels):
    apply("seen", 0, 0, 0, BASE, 0)
    apply("seen", 1, 1, 0, BASE + timedelta(minutes=2), 0)
    # An operator edits a value in the admin: the rollup does not see it.
    WhaleTransaction.objects.filter(txid=POOL[0].txid).update(value=F("value") + 5)
    assert rollup_rows(WhaleHourlyVolume) != stats.volume_sums(WhaleTransaction.objects.all())
    out = io.StringIO()

    call_command("rebuild_stats_rollups", stdout=out)

    assert_rollups_match_the_rows()
    volumes = len(rollup_rows(WhaleHourlyVolume))
    assert out.getvalue().startswith(f"rebuilt {volumes} volume, ")


def test_beat_rebuilds_the_recent_hours_and_leaves_older_ones(exchange_labels):
    apply("seen", 0, 0, 0, BASE - timedelta(hours=6), 0)
    apply("seen", 1, 1, 0, BASE, 0)
    stale = rollup_rows(WhaleHourlyVolume)
    # Hand edits of both whales: only the recent one is within beat's reach.
    WhaleTransaction.objects.update(value=F("value") + 5)

    with time_machine.travel(BASE + timedelta(minutes=30), tick=False):
        rebuild_recent_stats_rollups()

    def split(rows):
        recent = {key: sums for key, sums in rows.items() if key[0] >= stats.hour_of(BASE)}
        return recent, {key: sums for key, sums in rows.items() if key not in recent}

    rebuilt_recent, rebuilt_older = split(rollup_rows(WhaleHourlyVolume))
    fresh_recent, fresh_older = split(stats.volume_sums(WhaleTransaction.objects.all()))
    assert rebuilt_recent == fresh_recent and rebuilt_recent
    assert rebuilt_older == split(stale)[1] != fresh_older


def test_stats_request_reads_what_recording_just_wrote(exchange_labels, api):
    now = datetime.now(tz=UTC)
    apply("seen", 0, 0, 0, now - timedelta(minutes=1), 0)
    body = api.get("/api/v1/stats/?bucket=hour&days=1").json()
    assert sum(b["count"] for b in body["volumes"]) == 1
    assert sum(b["value_sat"] for b in body["volumes"]) == POOL[0].value
    assert body["totals"]["transfer_sat"] == POOL[0].transfer
