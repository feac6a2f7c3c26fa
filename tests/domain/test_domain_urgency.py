"""Urgency, bands, ETA, the fee-spike detector and the material-change rule."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detection.domain.urgency import (
    EFFECTIVE_RATE_CHANGE,
    FEE_BUMP,
    FEE_LEARNED,
    HIGH,
    LOW,
    MEDIUM,
    REPLACED,
    TARGET_BLOCK_CHANGE,
    FeeSpikeDetector,
    MempoolFeeContext,
    PredictionState,
    band_for,
    eta_seconds,
    material_change,
    purge_floor_from_mempoolminfee,
    score_urgency,
)

TYPICAL_MARKETS = [
    MempoolFeeContext(median_fee_rate=median, next_block_median_fee_rate=next_block)
    for median in (10.0, 15.0, 20.0)
    for next_block in (None, median, median * 1.5, median * 2)
]


@pytest.mark.parametrize("context", TYPICAL_MARKETS)
@pytest.mark.parametrize("fee_rate", [50.01, 60.0, 120.0])
def test_high_payer_scores_high_and_is_predicted_in_one_or_two_blocks(context, fee_rate):
    for projected_block, percentile in [(None, None), (0, 0.97), (1, 0.9)]:
        score = score_urgency(
            fee_rate, context, projected_block=projected_block, fee_percentile=percentile
        )
        assert score.urgency > 0.8 and score.band == HIGH
        assert score.predicted_blocks in (1, 2)
        assert not score.may_not_confirm_soon


@pytest.mark.parametrize("context", TYPICAL_MARKETS)
@pytest.mark.parametrize("fee_rate", [0.5, 1.0, 3.0, 4.99])
def test_low_payer_scores_low_and_may_not_confirm_soon(context, fee_rate):
    for projected_block, percentile in [(None, None), (7, 0.05), (3, 0.3)]:
        score = score_urgency(
            fee_rate, context, projected_block=projected_block, fee_percentile=percentile
        )
        assert score.urgency < 0.3 and score.band == LOW
        assert score.may_not_confirm_soon


def test_paying_the_next_block_median_is_medium_to_high():
    context = MempoolFeeContext(median_fee_rate=12, next_block_median_fee_rate=20)
    score = score_urgency(20.0, context)
    assert score.band in (MEDIUM, HIGH) and score.projected_block == 0
    assert score.reason == "projected block estimated from fee rate"


def test_zero_fee_does_not_crash():
    context = MempoolFeeContext(median_fee_rate=15, next_block_median_fee_rate=20)
    score = score_urgency(0.0, context)
    assert score.urgency == 0.0 and score.band == LOW and score.may_not_confirm_soon
    assert score.predicted_blocks is None and score.eta_seconds is None
    assert score.reason == "zero fee"
    # Real zero-fee whales (block 277647) in an empty market: still no crash, still 0.
    assert score_urgency(0.0, MempoolFeeContext()).urgency == 0.0


def test_unknown_fee_gives_no_urgency_but_keeps_the_source_position():
    context = MempoolFeeContext(median_fee_rate=15, seconds_since_last_block=100)
    score = score_urgency(None, context, projected_block=2)
    assert score.urgency is None and score.band is None
    assert score.reason.startswith("fee unknown")
    assert (score.projected_block, score.predicted_blocks) == (2, 3)
    assert score.eta_seconds == 2 * 600 + 500
    assert not score.may_not_confirm_soon
    assert score_urgency(None, context).predicted_blocks is None


def test_no_market_reference():
    score = score_urgency(25.0, MempoolFeeContext())
    assert score.urgency is None and "no market reference" in score.reason
    # The position alone is a reference.
    assert score_urgency(25.0, MempoolFeeContext(), projected_block=0).urgency == 1.0


def test_projected_block_estimated_from_percentile_and_mempool_size():
    context = MempoolFeeContext(median_fee_rate=10, mempool_vsize=30_000_000)
    score = score_urgency(8.0, context, fee_percentile=0.9)  # 3 MvB paying more
    assert (score.projected_block, score.predicted_blocks) == (3, 4)
    assert score.reason == "projected block estimated from fee percentile"
    far = score_urgency(2.0, context, fee_percentile=0.0)
    assert far.projected_block == 7 and far.may_not_confirm_soon  # capped at the last block


def test_below_the_purge_floor_may_be_purged():
    context = MempoolFeeContext(
        median_fee_rate=1.5, next_block_median_fee_rate=2, purge_floor_fee_rate=3
    )
    score = score_urgency(2.5, context)
    assert score.may_not_confirm_soon and score.may_be_purged
    assert not score_urgency(3.0, context).may_be_purged


def test_mempoolminfee_is_btc_per_kvb():
    # the real mainnet_mempoolInfo.json: 0.00001305 BTC/kvB = 1.305 sat/vB
    assert purge_floor_from_mempoolminfee(0.00001305) == pytest.approx(1.305)
    assert purge_floor_from_mempoolminfee(None) is None
    assert purge_floor_from_mempoolminfee(float("nan")) is None


def test_fee_spike_flag_is_carried():
    context = MempoolFeeContext(median_fee_rate=10)
    assert score_urgency(30.0, context, fee_spike=True).fee_spike
    assert not score_urgency(30.0, context).fee_spike


def test_bad_inputs_are_rejected():
    context = MempoolFeeContext(median_fee_rate=10)
    for kwargs in ({"fee_percentile": 1.5}, {"projected_block": -1}):
        with pytest.raises(ValueError):
            score_urgency(10.0, context, **kwargs)
    for rate in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            score_urgency(rate, context)


def test_bands():
    assert [band_for(u) for u in (None, 0.0, 0.39, 0.4, 0.79, 0.8, 1.0)] == [
        None,
        LOW,
        LOW,
        MEDIUM,
        MEDIUM,
        HIGH,
        HIGH,
    ]


def test_eta():
    assert eta_seconds(None, MempoolFeeContext()) is None
    assert eta_seconds(1, MempoolFeeContext()) == 600
    assert eta_seconds(3, MempoolFeeContext(block_interval_s=540)) == 1620
    assert eta_seconds(1, MempoolFeeContext(seconds_since_last_block=420)) == 180
    # An overdue block: the first wait is floored at 10 % of the interval, never zero.
    assert eta_seconds(1, MempoolFeeContext(seconds_since_last_block=1800)) == 60
    assert eta_seconds(2, MempoolFeeContext(seconds_since_last_block=1800)) == 660
    # Clock skew (a block "from the future") does not extend the wait.
    assert eta_seconds(1, MempoolFeeContext(seconds_since_last_block=-30)) == 600
    with pytest.raises(ValueError):
        eta_seconds(0, MempoolFeeContext())


rates = st.floats(min_value=0.0, max_value=5000.0, allow_nan=False)
optional_rates = st.none() | st.floats(min_value=0.0, max_value=2000.0, allow_nan=False)
contexts = st.builds(
    MempoolFeeContext,
    median_fee_rate=optional_rates,
    next_block_median_fee_rate=optional_rates,
    purge_floor_fee_rate=optional_rates,
    mempool_vsize=st.none() | st.floats(min_value=0, max_value=3e8),
    seconds_since_last_block=st.none() | st.floats(min_value=-100, max_value=1e5),
)
blocks = st.none() | st.integers(min_value=0, max_value=20)
percentiles = st.none() | st.floats(min_value=0.0, max_value=1.0)


@settings(max_examples=500, deadline=None)
@given(rates, rates, contexts, blocks, percentiles)
def test_urgency_monotone_in_fee_rate_and_bounded(a, b, context, projected_block, percentile):
    low_rate, high_rate = sorted((a, b))
    low = score_urgency(
        low_rate, context, projected_block=projected_block, fee_percentile=percentile
    )
    high = score_urgency(
        high_rate, context, projected_block=projected_block, fee_percentile=percentile
    )
    for score in (low, high):
        if score.urgency is not None:
            assert 0.0 <= score.urgency <= 1.0
            assert score.band == band_for(score.urgency)
        if score.eta_seconds is not None:
            assert score.eta_seconds > 0
    if low.urgency is not None and high.urgency is not None:
        assert high.urgency >= low.urgency - 1e-12


# --- fee spikes ----------------------------------------------------------------------------------


def test_spike_needs_more_than_five_times_the_window_low():
    detector = FeeSpikeDetector()
    assert not detector.add(0, 10)
    assert not detector.add(60, 12)
    assert not detector.add(120, 50)  # exactly 5x: not more
    assert detector.add(180, 50.1)
    assert detector.spiking
    assert detector.add(500, 60)  # the 10 sat/vB sample at t=0 is still inside 10 minutes
    assert not detector.add(601, 60)  # t=0 aged out; the window low is now 12
    assert detector.add(602, 61)  # 61 > 5 x 12
    assert not detector.add(661, 61)  # 12 (t=60) aged out too; the low is now 50


def test_spike_ignores_sub_sat_noise_out_of_order_and_bad_samples():
    detector = FeeSpikeDetector()
    detector.add(0, 0.1)
    assert not detector.add(10, 0.9)  # baseline floored at 1 sat/vB
    assert detector.add(20, 5.5)
    assert detector.add(15, 0.1)  # older than the newest sample: ignored, state kept
    assert detector.add(30, float("nan"))
    assert detector.add(31, -3)
    assert not detector.add(40, 1.0)


def test_first_sample_is_never_a_spike():
    assert not FeeSpikeDetector().add(0, 500)


# --- material change -----------------------------------------------------------------------------


def state(**overrides) -> PredictionState:
    values = {
        "txid": "aa",
        "fee": 10_000,
        "fee_rate": 20.0,
        "projected_block": 2,
        "tip_height": 800_000,
    }
    values.update(overrides)
    return PredictionState(**values)


def test_material_change_rules():
    before = state()
    assert material_change(before, state()).reasons == ()
    assert not material_change(before, state()).material
    # A block arrived and the tx moved one index forward: the same target height.
    assert not material_change(before, state(projected_block=1, tip_height=800_001)).material
    assert material_change(before, state(projected_block=1)).reasons == (TARGET_BLOCK_CHANGE,)
    assert material_change(before, state(txid="bb", fee=20_000, fee_rate=40.0)).reasons == (
        REPLACED,
        FEE_BUMP,
        EFFECTIVE_RATE_CHANGE,
    )
    # CPFP: +10 % effective rate is material, +5 % is not; tiny absolute moves never are.
    assert material_change(before, state(fee_rate=22.0)).reasons == (EFFECTIVE_RATE_CHANGE,)
    assert not material_change(before, state(fee_rate=21.0)).material
    low = state(fee_rate=1.0)
    assert not material_change(low, state(fee_rate=1.2)).material
    assert material_change(state(fee=None, fee_rate=None), state()).reasons == (
        FEE_LEARNED,
        EFFECTIVE_RATE_CHANGE,
    )
    # Without a tip height the block indexes are compared.
    assert material_change(
        state(tip_height=None), state(tip_height=None, projected_block=0)
    ).reasons == (TARGET_BLOCK_CHANGE,)
    assert material_change(state(fee_rate=0.0), state(fee_rate=1.0)).reasons == (
        EFFECTIVE_RATE_CHANGE,
    )
