"""One transport per channel. The registry maps a Delivery.channel to its transport class."""

from __future__ import annotations

from alerts.transports.base import Outcome, Transport
from alerts.transports.discord import DiscordTransport
from alerts.transports.email import EmailTransport
from alerts.transports.slack import SlackTransport
from alerts.transports.telegram import TelegramTransport
from alerts.transports.webhook import WebhookTransport

TRANSPORTS: dict[str, type[Transport]] = {
    EmailTransport.channel: EmailTransport,
    WebhookTransport.channel: WebhookTransport,
    TelegramTransport.channel: TelegramTransport,
    DiscordTransport.channel: DiscordTransport,
    SlackTransport.channel: SlackTransport,
}


def transport_for(delivery) -> Transport:
    return TRANSPORTS[delivery.channel](delivery)


__all__ = ["TRANSPORTS", "Outcome", "Transport", "transport_for"]
