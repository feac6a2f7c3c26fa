"""Fiat values end to end: a real local mempool.space-protocol WebSocket server sends
`conversions` and then a whale; the real ingest command, a real Celery worker, PostgreSQL, a real
webhook receiver and a real aiosmtpd server carry it to the API, the webhook and the e-mail.

The whale is 5143ba55… of block 277647: 927 BTC of outputs (917 + 10, no change identified, so
moved = total). At USD 69,880 (the real price in mempool.space's init data of 2024-03-31) it is
worth 927 × 69,880 = $64,778,760.00.
"""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

import pytest
from django.core.management import call_command

from alerts.models import Delivery
from detection.models import WhaleTransaction
from tests.alerts.conftest import (
    CONSOLIDATION_103,
    ZERO_FEE_927,
    json_body,
    make_endpoint,
    make_subscription,
)
from tests.ingest.ingest_support import MempoolServer, as_unconfirmed, mempool_frame, whales_277647

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CONVERSIONS = {"time": 1711854906, "USD": 69880, "EUR": 64823}


class ScriptedServer:
    """MempoolServer on its own event loop thread: once the ingest has subscribed (want +
    track-mempool), it sends `frames` in order."""

    def __init__(self, frames: list[dict]) -> None:
        self.frames = frames
        self.loop = asyncio.new_event_loop()
        self.server = MempoolServer()
        self.sent = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        asyncio.run_coroutine_threadsafe(self._script(), self.loop)
        return self

    async def _script(self) -> None:
        await self.server.wait_messages(0, 2, timeout=30)
        for frame in self.frames:
            await self.server.send(frame)
        self.sent.set()

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @property
    def url(self) -> str:
        return self.server.url


def ingest(frames: list[dict], seconds: float = 3.0) -> None:
    with ScriptedServer(frames) as server:
        call_command("ingest_mempool", source=server.url, max_seconds=seconds)
        assert server.sent.is_set()


def email_text(message) -> str:
    parts = {part.get_content_type(): part for part in message.walk()}
    return parts["text/plain"].get_payload(decode=True).decode()


def test_fiat_through_api_webhook_and_email(
    alice, bob, client, receiver, allow_loopback, smtp_server, celery_worker_process
):
    whales = {tx["txid"]: as_unconfirmed(tx) for tx in whales_277647()}
    endpoint = make_endpoint(alice, receiver.url)
    over_50m = make_subscription(
        alice, name="min $50M", endpoints=[endpoint], min_fiat=Decimal("50000000")
    )
    over_100m = make_subscription(
        alice, name="min $100M", endpoints=[endpoint], min_fiat=Decimal("100000000")
    )
    # Bob's: one e-mail per owner and event, so his shows the event was fanned out at all.
    btc_only = make_subscription(bob, name="100 BTC", email=True)

    # 1. A price, then the 927 BTC whale.
    ingest([{"conversions": CONVERSIONS}, mempool_frame(1, added=[whales[ZERO_FEE_927]])])
    [hook] = receiver.wait_for(1, timeout=30)
    mails = smtp_server.wait_for(2, timeout=30)

    whale = WhaleTransaction.objects.get(txid=ZERO_FEE_927)
    assert whale.value_usd == Decimal("64778760.00") and whale.price_usd == Decimal("69880")

    client.force_login(alice)
    body = client.get(f"/api/v1/whales/{ZERO_FEE_927}/").json()
    assert body["value_usd"] == "64778760.00"
    assert body["fiat"]["value"] == {"USD": "64778760.00", "EUR": "60090921.00"}
    assert body["fiat"]["prices"] == {"USD": "69880", "EUR": "64823"}

    payload = json_body(hook)
    assert payload["data"]["subscription"]["name"] == "min $50M"
    assert payload["data"]["whale"]["value_usd"] == "64778760.00"
    assert payload["data"]["whale"]["fiat"]["value"]["USD"] == "64778760.00"
    assert b'"value_usd":"64778760.00"' in hook.body

    by_subject = {str(m["Subject"]).strip(): m for m in mails}
    assert all("$64,778,760.00" in subject for subject in by_subject)
    texts = [email_text(m) for m in mails]
    assert all("Total:       927.00000000 BTC ($64,778,760.00)" in t for t in texts)
    assert sorted(
        Delivery.objects.filter(event__whale=whale).values_list("subscription__name", "channel")
    ) == [("100 BTC", "email"), ("min $50M", "email"), ("min $50M", "webhook")]
    assert not Delivery.objects.filter(subscription=over_100m).exists()

    # 2. A new ingest run (no price known) and the 103 BTC whale: no fiat, and the fiat-only
    # subscriptions stay silent while the BTC one hears it.
    ingest([mempool_frame(1, added=[whales[CONSOLIDATION_103]])])
    smtp_server.wait_for(3, timeout=30)
    other = WhaleTransaction.objects.get(txid=CONSOLIDATION_103)
    assert other.value_usd is None and other.moved_usd is None and other.fiat == {}
    body = client.get(f"/api/v1/whales/{CONSOLIDATION_103}/").json()
    assert body["value_usd"] is None and body["moved_usd"] is None and body["fiat"] is None
    assert list(
        Delivery.objects.filter(event__whale=other).values_list("subscription_id", flat=True)
    ) == [btc_only.pk]
    assert len(receiver.requests) == 1
    assert Delivery.objects.filter(subscription=over_50m).count() == 2  # run 1 only
