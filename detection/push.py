"""The dashboard push: a committed whale event, summarised, to the channel layer group."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

from channels.layers import get_channel_layer
from redis.exceptions import ConnectionError as RedisConnectionError

from detection.models import WhaleEvent, WhaleTransaction
from detection.txshape import SATS_PER_BTC
from whaleproject.metrics import observe_detection_latency

WHALE_FEED_GROUP = "whale-feed"
PUSH_TIMEOUT_SECONDS = 5.0

log = logging.getLogger(__name__)


class _LayerLoop:
    """One event loop per process, in a daemon thread, for every push from sync code.

    `async_to_sync` makes a new loop per call, and channels-redis keeps its connection pools per
    loop, so each push paid for a fresh Redis connection: about 6 ms against under 1 ms here.
    The loop is recreated in a forked child (Celery's prefork pool), where the parent's thread
    does not exist.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid() or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="channel-layer-push", daemon=True
                ).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coroutine: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.get()).result(timeout)


_layer_loop = _LayerLoop()


def group_send(group: str, message: dict[str, Any]) -> None:
    """Send to a channel-layer group from sync code, on the process's long-lived loop."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        _layer_loop.run(layer.group_send(group, message), PUSH_TIMEOUT_SECONDS)
    except (RedisConnectionError, OSError) as exc:
        # A pooled connection that Redis dropped (a restart) fails once; a new one works.
        log.warning("channel layer send failed (%s); retrying once on a new connection", exc)
        _layer_loop.run(layer.group_send(group, message), PUSH_TIMEOUT_SECONDS)


def btc(sats: int | None) -> str | None:
    """Satoshis as an exact BTC decimal string (never a float)."""
    if sats is None:
        return None
    sign = "-" if sats < 0 else ""
    whole, frac = divmod(abs(sats), SATS_PER_BTC)
    return f"{sign}{whole}.{frac:08d}"


def whale_summary(whale: WhaleTransaction) -> dict[str, Any]:
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
            "fee_spike": prediction.fee_spike,
        },
    }


def event_summary(event: WhaleEvent) -> dict[str, Any]:
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


def push_event(event_id: int) -> None:
    event = WhaleEvent.everything.select_related("whale", "whale__chain", "whale__replaced_by").get(
        pk=event_id
    )
    if event.watch_only:
        return  # a watch hit below the floor: pushed to its watchers only, by the alert fan-out
    group_send(WHALE_FEED_GROUP, {"type": "whale.event", "event": event_summary(event)})
    observe_detection_latency("pushed", event.kind, event.frame_received_at)
