"""One transport per channel. The registry maps a Delivery.channel to its transport class."""

from __future__ import annotations

from alerts.transports.base import Outcome, Transport
from alerts.transports.email import EmailTransport
from alerts.transports.webhook import WebhookTransport

TRANSPORTS: dict[str, type[Transport]] = {
    EmailTransport.channel: EmailTransport,
    WebhookTransport.channel: WebhookTransport,
}


def transport_for(delivery) -> Transport:
    return TRANSPORTS[delivery.channel](delivery)


__all__ = ["TRANSPORTS", "Outcome", "Transport", "transport_for"]
