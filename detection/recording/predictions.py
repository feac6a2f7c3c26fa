"""Predictions: made when an event changes the projection materially, resolved and scored when
the whale confirms, closed when it is replaced or dropped, reopened on a reorg.

Every change to an outcome moves the prediction's share of the accuracy rollup (rollups), so the
figures stay equal to the rows.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.db.models import Q

from detection.domain import accuracy, urgency
from detection.models import (
    Prediction,
    PredictionOutcome,
    WhaleEvent,
    WhaleStatus,
    WhaleTransaction,
)
from detection.recording.payload import is_new, unix_time
from detection.recording.rollups import OUTCOME_FIELDS, move_outcome, outcome_of

# The logger name of the module this code was split from, so log filters and tests keep working.
log = logging.getLogger("detection.recording")


def predict(whale: WhaleTransaction, event: WhaleEvent, payload: dict[str, Any]) -> None:
    projection = payload.get("projection") or {}
    previous = None if is_new(whale) else whale.predictions.order_by("-made_at", "-id").first()
    fee_rate = whale.best_fee_rate
    tip_height = projection.get("tip_height")
    projected_block = projection.get("projected_block")
    if previous is not None:
        change = urgency.material_change(
            urgency.PredictionState(
                txid=whale.txid,
                fee=_fee_at(previous, whale),
                fee_rate=previous.fee_rate,
                projected_block=previous.projected_block,
                tip_height=previous.tip_height,
            ),
            urgency.PredictionState(
                txid=whale.txid,
                fee=whale.fee,
                fee_rate=fee_rate,
                projected_block=projected_block,
                tip_height=tip_height,
            ),
        )
        if not change.material:
            return
    score = urgency_score(whale, projection)
    if score is None:
        return
    made_at = projection.get("made_at")
    root = whale.chain_root
    # A new whale that is its own chain's root has no predictions yet: no query needed.
    first_of_chain = (is_new(whale) and root.pk == whale.pk) or not Prediction.objects.filter(
        Q(whale=root) | Q(whale__chain=root)
    ).exists()
    prediction = Prediction.objects.create(
        scored=first_of_chain,
        whale=whale,
        event=event,
        made_at=unix_time(made_at, "projection.made_at") if made_at else event.occurred_at,
        tip_height=tip_height,
        fee_rate=fee_rate,
        projected_block=score.projected_block,
        predicted_blocks=score.predicted_blocks,
        fee_percentile=projection.get("fee_percentile"),
        urgency=score.urgency,
        band=score.band or "",
        eta_seconds=round(score.eta_seconds) if score.eta_seconds is not None else None,
        may_not_confirm_soon=score.may_not_confirm_soon,
        may_be_purged=score.may_be_purged,
        fee_spike=score.fee_spike,
        basis=str(projection.get("basis", ""))[:20],
    )
    if not is_new(whale):
        _refresh_latest_urgency(whale)
    elif whale.latest_urgency != score.urgency:  # its only prediction; usually set on insert
        whale.latest_urgency = score.urgency
        whale.save(update_fields=["latest_urgency", "updated_at"])
    if whale.status == WhaleStatus.CONFIRMED and whale.confirmed_height is not None:
        resolve_confirmed([prediction], whale.confirmed_height, whale.confirmed_hash)


def urgency_score(
    whale: WhaleTransaction, projection: dict[str, Any]
) -> urgency.UrgencyScore | None:
    context = urgency.context_from_projection(projection)
    try:
        return urgency.score_urgency(
            whale.best_fee_rate,
            context,
            projected_block=projection.get("projected_block"),
            fee_percentile=projection.get("fee_percentile"),
            fee_spike=bool(projection.get("fee_spike")),
        )
    except ValueError as exc:
        log.warning("prediction skipped for %s: %s", whale.txid, exc)
        return None


def _refresh_latest_urgency(whale: WhaleTransaction) -> None:
    """Keep the denormalised copy the API filters on (min_urgency) equal to the latest prediction.

    Re-read rather than take the new row: a projection's made_at may be older than an earlier
    prediction's when workers run events out of order.
    """
    latest = whale.predictions.order_by("-made_at", "-id").values_list("urgency", flat=True)[:1]
    urgency_now = next(iter(latest), None)
    if urgency_now != whale.latest_urgency:
        whale.latest_urgency = urgency_now
        whale.save(update_fields=["latest_urgency", "updated_at"])


def _fee_at(prediction: Prediction, whale: WhaleTransaction) -> int | None:
    if prediction.fee_rate is None or not whale.vsize:
        return None
    return round(prediction.fee_rate * whale.vsize)


def resolve_confirmed(predictions, height: int, block_hash: str) -> None:
    now = datetime.now(tz=UTC)
    for prediction in predictions:
        before = outcome_of(prediction)
        prediction.outcome = PredictionOutcome.CONFIRMED
        prediction.resolved_at = now
        prediction.resolved_height = height
        prediction.resolved_block_hash = block_hash
        if prediction.predicted_blocks and prediction.tip_height is not None:
            try:
                result = accuracy.resolve(
                    prediction.predicted_blocks, prediction.tip_height, height
                )
            except ValueError:
                result = None  # made on a tip at or above the block: not scorable
            if result is not None:
                prediction.actual_blocks = result.actual_blocks
                prediction.hit = result.hit
                prediction.abs_error = result.abs_error
        prediction.save()
        move_outcome(before, outcome_of(prediction))


def close_open_predictions(whale: WhaleTransaction, outcome: str) -> None:
    update_predictions(
        whale.predictions.filter(outcome=PredictionOutcome.OPEN),
        outcome=outcome,
        resolved_at=datetime.now(tz=UTC),
    )


def update_predictions(predictions, **fields: Any) -> None:
    """`predictions.update(**fields)`, moving each row's share of the accuracy rollup."""
    rows = list(predictions.values("id", *OUTCOME_FIELDS))
    if not rows:
        return
    Prediction.objects.filter(pk__in=[row["id"] for row in rows]).update(**fields)
    for row in rows:
        move_outcome(outcome_of(row), outcome_of(row | fields))
