"""The one public shape of a whale and of a whale event, and exact BTC amounts.

Used by the dashboard push and page, the REST API, the CSV export, webhooks and e-mail, so that
every surface says the same thing. Imports no Django: it reads attributes of the rows it is given.
"""

from __future__ import annotations

from typing import Any

from detection.txshape import SATS_PER_BTC


def btc(sats: int | None) -> str | None:
    """Satoshis as an exact BTC decimal string (never a float)."""
    if sats is None:
        return None
    sign = "-" if sats < 0 else ""
    whole, frac = divmod(abs(sats), SATS_PER_BTC)
    return f"{sign}{whole}.{frac:08d}"


def whale_summary(whale) -> dict[str, Any]:
    prediction = whale.predictions.order_by("-made_at", "-id").first()
    return {
        "txid": whale.txid,
        "chain_txid": whale.chain_root.txid,
        "status": whale.status,
        "value_btc": btc(whale.value),
        "value_sat": whale.value,
        "transfer_btc": btc(whale.transfer),
        "transfer_sat": whale.transfer,
        "fee_sat": whale.fee,
        "fee_rate": whale.best_fee_rate,
        "flow": whale.flow,
        "from_entity": whale.from_entity or None,
        "to_entity": whale.to_entity or None,
        "shape_tags": whale.shape_tags,
        "conflict": whale.conflict,
        "replaced_by": whale.replaced_by.txid if whale.replaced_by_id else None,
        "first_seen_at": whale.first_seen_at.isoformat(),
        "confirmed_height": whale.confirmed_height,
        "blocks_waited": whale.blocks_waited,
        "prediction": None
        if prediction is None
        else {
            "urgency": prediction.urgency,
            "band": prediction.band or None,
            "projected_block": prediction.projected_block,
            "predicted_blocks": prediction.predicted_blocks,
            "eta_seconds": prediction.eta_seconds,
            "may_not_confirm_soon": prediction.may_not_confirm_soon,
            "may_be_purged": prediction.may_be_purged,
            "fee_spike": prediction.fee_spike,
        },
    }


def event_summary(event) -> dict[str, Any]:
    return {
        "id": event.pk,
        "kind": event.kind,
        "sequence": event.sequence,
        "occurred_at": event.occurred_at.isoformat(),
        "frame_received_at": event.frame_received_at.isoformat()
        if event.frame_received_at
        else None,
        "details": event.details,
        "whale": whale_summary(event.whale),
    }
