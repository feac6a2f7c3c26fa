"""The one phrasing of a prediction: urgency, target block and "may not confirm soon" agree."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detection.domain.urgency import MempoolFeeContext, score_urgency
from detection.domain.wording import describe_prediction, eta_words, prediction_words


def test_zero_fee_whale_in_block_zero_never_reads_next_block():
    # The 927 BTC whale: the source placed it in projected block 0, it pays 0 sat/vB.
    score = score_urgency(
        0.0, MempoolFeeContext(next_block_median_fee_rate=12.0), projected_block=0
    )
    assert score.band == "low" and score.may_not_confirm_soon
    words = describe_prediction(
        predicted_blocks=score.predicted_blocks,
        eta_seconds=score.eta_seconds,
        may_not_confirm_soon=score.may_not_confirm_soon,
        band=score.band,
        fee_rate=0.0,
    )
    assert words.text == "may not confirm soon · zero fee"


def test_next_block_with_eta_and_height():
    words = prediction_words(
        {"predicted_blocks": 1, "eta_seconds": 540, "band": "high", "tip_height": 875_123},
        fee_rate=40.0,
    )
    assert (words.target, words.detail) == ("next block", "~9 min · block 875,124")


def test_far_and_cheap_reasons():
    far = describe_prediction(
        predicted_blocks=8, eta_seconds=4800, may_not_confirm_soon=True, band="low", fee_rate=9.0
    )
    assert far.text == "may not confirm soon · 7+ blocks away"
    cheap = describe_prediction(
        predicted_blocks=2, eta_seconds=900, may_not_confirm_soon=True, band="low", fee_rate=2.0
    )
    assert cheap.text == "may not confirm soon · fee below the market"


def test_low_band_near_target_says_it_could_slip():
    words = describe_prediction(
        predicted_blocks=1, eta_seconds=600, may_not_confirm_soon=False, band="low", fee_rate=6.0
    )
    assert words.text == "next block · ~10 min · low fee: could slip"


def test_no_prediction():
    assert prediction_words(None, None).text == "no prediction"
    assert prediction_words({"predicted_blocks": None}, None).text == "no prediction · fee unknown"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, ""), (20, "< 1 min"), (600, "~10 min"), (7200, "~2 h"), (4 * 86400, "~4 d")],
)
def test_eta_words(seconds, text):
    assert eta_words(seconds) == text


@given(
    fee_rate=st.one_of(st.none(), st.floats(min_value=0, max_value=2000)),
    reference=st.floats(min_value=0.1, max_value=500),
    projected_block=st.one_of(st.none(), st.integers(min_value=0, max_value=7)),
)
def test_words_never_contradict_the_score(fee_rate, reference, projected_block):
    context = MempoolFeeContext(next_block_median_fee_rate=reference, seconds_since_last_block=120)
    score = score_urgency(fee_rate, context, projected_block=projected_block)
    words = describe_prediction(
        predicted_blocks=score.predicted_blocks,
        eta_seconds=score.eta_seconds,
        may_not_confirm_soon=score.may_not_confirm_soon,
        band=score.band,
        fee_rate=fee_rate,
    )
    if score.may_not_confirm_soon:
        assert words.target == "may not confirm soon" and "min" not in words.text
    if words.target == "next block" and score.band == "low":
        assert "could slip" in words.detail
    if fee_rate == 0:
        assert words.text == "may not confirm soon · zero fee"
