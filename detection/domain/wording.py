"""The words a person reads about a prediction: when a pending whale should confirm, and why not.

One home for this phrase, so the feed, the whale page, e-mail and chat never contradict each
other or the urgency band. The rules:

* "may be purged" (fee below the mempool's purge floor, `mempoolminfee`) wins over everything:
  such a whale may be evicted before it is mined at all.
* "may not confirm soon" wins over any block target: a whale flagged slow (zero fee, fee below
  half the market, 7+ blocks out) never also reads "next block ~10 min". The detail says why.
* Otherwise the target is "next block" or "within N blocks", with the ETA ("~10 min") and, when
  the tip height is known, the block height expected ("block 875,124").
* A low urgency band with a near target says the estimate is fragile ("low fee: could slip"),
  so "Low" and "next block" never stand side by side unexplained.

Input is the public prediction shape (detection.summary) plus the whale's fee rate; no Django.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from detection.domain.urgency import LOW, SLOW_PROJECTED_BLOCK

NO_PREDICTION = "no prediction"
MAY_NOT_CONFIRM_SOON = "may not confirm soon"
MAY_BE_PURGED = "may be purged"


@dataclass(frozen=True, slots=True)
class PredictionWords:
    target: str  # "next block", "within 3 blocks", "may not confirm soon", "no prediction"
    detail: str  # "~10 min · block 875,124", "zero fee", "" ...

    @property
    def text(self) -> str:
        return f"{self.target} · {self.detail}" if self.detail else self.target

    def __str__(self) -> str:
        return self.text

    def as_dict(self) -> dict[str, str]:
        return {"target": self.target, "detail": self.detail, "text": self.text}


def eta_words(seconds: float | None) -> str:
    """An ETA in seconds as "< 1 min", "~12 min", "~3 h" or "~2 d"."""
    if seconds is None:
        return ""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "< 1 min"
    if minutes < 90:
        return f"~{minutes} min"
    hours = seconds / 3600
    return f"~{hours:.0f} h" if hours < 48 else f"~{hours / 24:.0f} d"


def describe_prediction(
    *,
    predicted_blocks: int | None,
    eta_seconds: float | None,
    may_not_confirm_soon: bool,
    band: str | None,
    fee_rate: float | None,
    tip_height: int | None = None,
    may_be_purged: bool = False,
) -> PredictionWords:
    if may_be_purged:
        return PredictionWords(MAY_BE_PURGED, "fee below the mempool's purge floor")
    if may_not_confirm_soon:
        return PredictionWords(MAY_NOT_CONFIRM_SOON, _slow_reason(fee_rate, predicted_blocks))
    if predicted_blocks is None:
        return PredictionWords(NO_PREDICTION, "fee unknown" if fee_rate is None else "")
    target = "next block" if predicted_blocks <= 1 else f"within {predicted_blocks} blocks"
    details = [eta_words(eta_seconds)]
    if tip_height is not None:
        details.append(f"block {tip_height + predicted_blocks:,}")
    if band == LOW:
        details.append("low fee: could slip")
    return PredictionWords(target, " · ".join(d for d in details if d))


def _slow_reason(fee_rate: float | None, predicted_blocks: int | None) -> str:
    if fee_rate == 0:
        return "zero fee"
    if predicted_blocks is not None and predicted_blocks > SLOW_PROJECTED_BLOCK:
        return f"{SLOW_PROJECTED_BLOCK + 1}+ blocks away"
    return "fee below the market"


def prediction_words(
    prediction: Mapping[str, Any] | None, fee_rate: float | None
) -> PredictionWords:
    """The words for a prediction in its public shape (detection.summary)."""
    if not prediction:
        return PredictionWords(NO_PREDICTION, "")
    predicted_blocks = prediction.get("predicted_blocks")
    projected_block = prediction.get("projected_block")
    if predicted_blocks is None and projected_block is not None:
        predicted_blocks = projected_block + 1  # older payloads carry only the block index
    return describe_prediction(
        predicted_blocks=predicted_blocks,
        eta_seconds=prediction.get("eta_seconds"),
        may_not_confirm_soon=bool(prediction.get("may_not_confirm_soon")),
        band=prediction.get("band"),
        fee_rate=fee_rate,
        tip_height=prediction.get("tip_height"),
        may_be_purged=bool(prediction.get("may_be_purged")),
    )
