"""Prediction resolution, rolling windows, coverage, the reorg rule and the low-accuracy alarm."""

from __future__ import annotations

import pytest

from detection.domain.accuracy import (
    CONFIRMED,
    DAY,
    DROPPED,
    HOUR,
    REPLACED,
    Outcome,
    Resolution,
    confirmed_outcome,
    coverage,
    low_accuracy_alarm,
    resolve,
    revert_orphaned,
    rolling_windows,
)

T0 = 1_700_000_000.0  # tip 800_000 arrives
TIP = 800_000


def block_time(height: int) -> float:
    return T0 + (height - TIP) * 600


def test_resolve_arithmetic():
    assert resolve(1, TIP, TIP + 1) == Resolution(actual_blocks=1, hit=True, abs_error=0)
    assert resolve(2, TIP, TIP + 1) == Resolution(actual_blocks=1, hit=True, abs_error=1)
    assert resolve(1, TIP, TIP + 3) == Resolution(actual_blocks=3, hit=False, abs_error=2)
    assert resolve(3, TIP, TIP + 3) == Resolution(actual_blocks=3, hit=True, abs_error=0)


def test_exact_early_and_late_are_scored_alike():
    # exact
    assert resolve(3, TIP, TIP + 3) == Resolution(actual_blocks=3, hit=True, abs_error=0)
    # one block either way is still a hit
    assert resolve(3, TIP, TIP + 2).hit and resolve(3, TIP, TIP + 4).hit
    # early: "in 5 blocks", confirmed in the next one. The old rule (actual <= predicted) called
    # this a hit, which rewarded predicting late.
    assert resolve(5, TIP, TIP + 1) == Resolution(actual_blocks=1, hit=False, abs_error=4)
    # late: "next block", confirmed 4 blocks later
    assert resolve(1, TIP, TIP + 4) == Resolution(actual_blocks=4, hit=False, abs_error=3)


def test_the_catch_all_block_means_eight_or_more():
    """Projected block 7 (predicted_blocks 8) is mempool.space's last block: "8 or more"."""
    assert resolve(8, TIP, TIP + 8) == Resolution(actual_blocks=8, hit=True, abs_error=0)
    assert resolve(8, TIP, TIP + 40) == Resolution(actual_blocks=40, hit=True, abs_error=0)
    assert resolve(8, TIP, TIP + 7) == Resolution(actual_blocks=7, hit=False, abs_error=1)
    assert resolve(8, TIP, TIP + 2) == Resolution(actual_blocks=2, hit=False, abs_error=6)
    # a point prediction of 7 blocks confirmed after 40 is a plain miss
    assert resolve(7, TIP, TIP + 40) == Resolution(actual_blocks=40, hit=False, abs_error=33)


def test_coverage_by_band_is_the_share_that_confirmed():
    outcomes = [
        confirmed_outcome(
            resolved_at=T0 - 60,
            band="high",
            predicted_blocks=1,
            tip_height_at_prediction=TIP,
            confirmed_height=TIP + 1,
        ),
        Outcome(resolved_at=T0 - 50, band="high", outcome=REPLACED),
        Outcome(resolved_at=T0 - 40, band="high", outcome=DROPPED),
        Outcome(resolved_at=T0 - 30, band="high", outcome=DROPPED),
    ]
    high = rolling_windows(outcomes, T0)["1h"].by_band["high"]
    assert (high.hit_rate, high.mean_abs_error, high.coverage) == (1.0, 0.0, 0.25)
    assert rolling_windows(outcomes, T0)["1h"].by_band["low"].coverage is None
    with pytest.raises(ValueError):
        resolve(1, TIP, TIP)  # confirmed at the prediction's own tip: a stale or reorged tip
    with pytest.raises(ValueError):
        resolve(0, TIP, TIP + 1)


def scripted_outcomes() -> list[Outcome]:
    """Blocks 800001..800004 every 600 s after the predictions made at tip 800000 / 800001."""
    return [
        # high, "next block": mined in 800001 -> hit
        confirmed_outcome(
            resolved_at=block_time(TIP + 1),
            band="high",
            predicted_blocks=1,
            tip_height_at_prediction=TIP,
            confirmed_height=TIP + 1,
            block_hash="b1",
        ),
        # high, "next block": mined in 800003 -> miss by 2
        confirmed_outcome(
            resolved_at=block_time(TIP + 3),
            band="high",
            predicted_blocks=1,
            tip_height_at_prediction=TIP,
            confirmed_height=TIP + 3,
            block_hash="b3",
        ),
        # medium, "within 3": mined in 800002 -> hit, error 1
        confirmed_outcome(
            resolved_at=block_time(TIP + 2),
            band="medium",
            predicted_blocks=3,
            tip_height_at_prediction=TIP,
            confirmed_height=TIP + 2,
            block_hash="b2",
        ),
        # medium, predicted at tip 800001 "within 2": mined in 800002 -> hit, error 1
        confirmed_outcome(
            resolved_at=block_time(TIP + 2),
            band="medium",
            predicted_blocks=2,
            tip_height_at_prediction=TIP + 1,
            confirmed_height=TIP + 2,
            block_hash="b2",
        ),
        Outcome(resolved_at=block_time(TIP + 1) + 30, band="low", outcome=REPLACED),
        Outcome(resolved_at=block_time(TIP + 4), band="low", outcome=DROPPED),
        # fee unknown when predicted (no prevouts): counted under "unscored"
        confirmed_outcome(
            resolved_at=block_time(TIP + 4),
            band=None,
            predicted_blocks=1,
            tip_height_at_prediction=TIP + 3,
            confirmed_height=TIP + 4,
            block_hash="b4",
        ),
        # older ones, for the longer windows
        confirmed_outcome(
            resolved_at=T0 - 2 * DAY,
            band="high",
            predicted_blocks=1,
            tip_height_at_prediction=TIP - 290,
            confirmed_height=TIP - 289,
        ),
        confirmed_outcome(
            resolved_at=T0 - 30 * DAY,
            band="low",
            predicted_blocks=2,
            tip_height_at_prediction=TIP - 4300,
            confirmed_height=TIP - 4294,
        ),
        Outcome(resolved_at=T0 - 100 * DAY, band="high", outcome=DROPPED),  # beyond 90 days
    ]


def test_rolling_windows_on_a_scripted_block_sequence():
    now = block_time(TIP + 4) + 60
    windows = rolling_windows(scripted_outcomes(), now)
    assert list(windows) == ["1h", "24h", "7d", "90d"]

    hour = windows["1h"]
    assert (hour.overall.resolved, hour.overall.hits) == (5, 4)
    assert hour.overall.hit_rate == pytest.approx(0.8)
    assert hour.overall.mean_abs_error == pytest.approx((0 + 2 + 1 + 1 + 0) / 5)
    assert (hour.overall.replaced, hour.overall.dropped) == (1, 1)
    high, medium, low, unscored = (hour.by_band[b] for b in ("high", "medium", "low", "unscored"))
    assert (high.resolved, high.hits, high.hit_rate, high.mean_abs_error) == (2, 1, 0.5, 1.0)
    assert (medium.resolved, medium.hits, medium.hit_rate, medium.mean_abs_error) == (
        2,
        2,
        1.0,
        1.0,
    )
    assert (low.resolved, low.hit_rate, low.mean_abs_error, low.replaced, low.dropped) == (
        0,
        None,
        None,
        1,
        1,
    )
    assert (unscored.resolved, unscored.hits) == (1, 1)

    assert windows["24h"].overall.resolved == 5
    assert windows["7d"].overall.resolved == 6
    assert windows["7d"].by_band["high"].resolved == 3
    ninety = windows["90d"].overall
    assert (ninety.resolved, ninety.hits, ninety.dropped) == (7, 5, 1)  # 30-day one missed by 4


def test_window_bounds_exclude_the_future_and_the_exact_start():
    outcomes = [
        Outcome(resolved_at=T0 - HOUR, band="high", outcome=REPLACED),  # exactly 1 h old: out
        Outcome(resolved_at=T0 + 1, band="high", outcome=REPLACED),  # after `now`: out
        Outcome(resolved_at=T0, band="high", outcome=REPLACED),  # now: in
    ]
    assert rolling_windows(outcomes, T0)["1h"].overall.replaced == 1


def test_reorg_reverts_confirmations_in_orphaned_blocks():
    outcomes = scripted_outcomes()
    # Block b2 (800002) is orphaned; its two confirmations go back to pending.
    split = revert_orphaned(outcomes, orphaned_hashes={"b2"})
    assert [o.block_hash for o in split.reverted] == ["b2", "b2"]
    assert len(split.kept) == len(outcomes) - 2
    now = block_time(TIP + 4) + 60
    hour = rolling_windows(split.kept, now)["1h"]
    assert (hour.overall.resolved, hour.overall.hits) == (3, 2)
    assert hour.by_band["medium"].resolved == 0

    # The two txs re-confirm in the replacement chain at 800003: re-resolved from the same
    # predictions (tips 800000 and 800001).
    again = [
        confirmed_outcome(
            resolved_at=now + 600,
            band="medium",
            predicted_blocks=3,
            tip_height_at_prediction=TIP,
            confirmed_height=TIP + 3,
            block_hash="b3x",
        ),
        confirmed_outcome(
            resolved_at=now + 600,
            band="medium",
            predicted_blocks=2,
            tip_height_at_prediction=TIP + 1,
            confirmed_height=TIP + 3,
            block_hash="b3x",
        ),
    ]
    medium = rolling_windows([*split.kept, *again], now + 600)["1h"].by_band["medium"]
    assert (medium.resolved, medium.hits, medium.mean_abs_error) == (2, 2, 0.0)

    # By fork height: everything confirmed above 800001 is reverted; replaced/dropped stay.
    by_height = revert_orphaned(outcomes, fork_height=TIP + 1)
    assert sorted(o.confirmed_height for o in by_height.reverted) == [
        TIP + 2,
        TIP + 2,
        TIP + 3,
        TIP + 4,
    ]
    assert all(o.outcome != CONFIRMED or o.confirmed_height <= TIP + 1 for o in by_height.kept)
    assert sum(o.outcome in (REPLACED, DROPPED) for o in by_height.kept) == 3


def test_outcome_validation():
    with pytest.raises(ValueError):
        Outcome(resolved_at=T0, band="high", outcome="mined")
    with pytest.raises(ValueError):
        Outcome(resolved_at=T0, band="high", outcome=CONFIRMED)
    replaced = Outcome(resolved_at=T0, band="high", outcome=REPLACED)
    assert replaced.hit is None and replaced.abs_error is None


def test_coverage():
    assert coverage(45, 50) == pytest.approx(0.9)
    assert coverage(0, 0) is None
    with pytest.raises(ValueError):
        coverage(51, 50)


def test_low_accuracy_alarm():
    now = T0
    assert not low_accuracy_alarm(19, 0, now=now, last_alert_at=None).alert  # too few resolved
    assert not low_accuracy_alarm(20, 14, now=now, last_alert_at=None).alert  # exactly 70 %
    decision = low_accuracy_alarm(20, 13, now=now, last_alert_at=None)
    assert decision.alert and "65%" in decision.reason
    # At most one per hour.
    assert not low_accuracy_alarm(20, 13, now=now, last_alert_at=now - 3599).alert
    assert low_accuracy_alarm(20, 13, now=now, last_alert_at=now - 3600).alert


def test_alarm_fed_from_the_24h_window():
    outcomes = [
        confirmed_outcome(
            resolved_at=T0 - n * 60,
            band="high",
            predicted_blocks=1,
            tip_height_at_prediction=TIP,
            confirmed_height=TIP + (1 if n % 2 else 3),
        )
        for n in range(24)
    ]
    day = rolling_windows(outcomes, T0)["24h"].overall
    assert (day.resolved, day.hits) == (24, 12)
    assert low_accuracy_alarm(day.resolved, day.hits, now=T0, last_alert_at=None).alert
