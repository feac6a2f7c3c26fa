"""Webhooks, signed the Standard Webhooks way and sent through alerts.http (the SSRF guard)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from standardwebhooks.webhooks import Webhook

from alerts import http
from alerts.payloads import body_bytes
from alerts.transports.base import Outcome, Transport
from whaleproject.metrics import observe_webhook_latency

log = logging.getLogger(__name__)

NOT_ALLOWED = "not allowed: webhooks go to public addresses only"
COULD_NOT_CONNECT = "could not connect"

EXCERPT_CHARS = 1000
# 4xx answers that mean "try again later" rather than "this request is wrong".
RETRYABLE_4XX = {408, 425, 429}


def sign(secrets: list[str], message_id: str, timestamp: datetime, body: str) -> str:
    """The webhook-signature header: one "v1,<sig>" per live secret, space-separated."""
    return " ".join(Webhook(secret).sign(message_id, timestamp, body) for secret in secrets)


def signed_headers(endpoint, message_id: str, body: str) -> dict[str, str]:
    timestamp = datetime.fromtimestamp(int(time.time()), tz=UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": sign(endpoint.signing_secrets(), message_id, timestamp, body),
    }


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(tz=UTC)).total_seconds())


def excerpt(response: http.Response) -> str:
    text = response.body[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    return text[:EXCERPT_CHARS]


class WebhookTransport(Transport):
    channel = "webhook"

    def send(self) -> Outcome:
        delivery = self.delivery
        endpoint = delivery.endpoint
        body = body_bytes(delivery.body)
        headers = signed_headers(endpoint, delivery.message_id, body)
        started = time.monotonic()
        try:
            response = http.post(endpoint.url, body.encode(), headers)
        # Users see only "not allowed" or "could not connect": naming the address a host
        # resolved to, or telling a refused port from a silent one, would make the webhook
        # test a port scanner of the internal network. The detail goes to the server log.
        except http.BlockedDestination as exc:
            log.info("webhook %s: %s", delivery.public_id, exc)
            return Outcome(
                ok=False,
                error=NOT_ALLOWED,
                duration=time.monotonic() - started,
                retryable=False,
            )
        except http.OutboundError as exc:
            log.info("webhook %s: %s", delivery.public_id, exc)
            observe_webhook_latency(time.monotonic() - started, "error")
            return Outcome(ok=False, error=COULD_NOT_CONNECT, duration=time.monotonic() - started)
        outcome = self.judge(response)
        observe_webhook_latency(response.duration, "ok" if outcome.ok else "http_error")
        return outcome

    @staticmethod
    def judge(response: http.Response) -> Outcome:
        status = response.status
        outcome = Outcome(
            ok=200 <= status < 300,
            status_code=status,
            duration=response.duration,
            response_excerpt=excerpt(response),
        )
        if outcome.ok:
            return outcome
        outcome.error = f"HTTP {status}"
        if status == 410:
            outcome.retryable = False
            outcome.disable_endpoint = "the receiver answered 410 Gone"
        elif 300 <= status < 400:
            outcome.retryable = False
            location = response.header("location") or "?"
            outcome.error = f"HTTP {status}: redirects are not followed (Location: {location})"[
                :500
            ]
        elif 400 <= status < 500 and status not in RETRYABLE_4XX:
            outcome.retryable = False
        else:
            outcome.retry_after = parse_retry_after(response.header("retry-after"))
        return outcome
