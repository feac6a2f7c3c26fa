"""The base transport and the outcome every send reports."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Outcome:
    """What one try achieved. The delivery engine turns it into rows and a retry decision."""

    ok: bool
    status_code: int | None = None
    error: str = ""
    duration: float | None = None  # seconds
    response_excerpt: str = ""
    # False: retrying cannot help (a 4xx, a refused address, no e-mail address).
    retryable: bool = True
    # Seconds the receiver asked us to wait (Retry-After).
    retry_after: float | None = None
    # Non-empty: the endpoint must stop receiving, for this reason (410 Gone).
    disable_endpoint: str = ""
    # Not sent because our own pacing had no slot (alerts.pacing): try again after retry_after
    # seconds exactly, without climbing the failure schedule.
    paced: bool = False
    # Telegram: the chat now lives under this id (a group upgraded to a supergroup).
    moved_to_chat_id: int | None = None


class Transport:
    """Sends one Delivery over one channel. Subclasses implement send() and never raise for
    an ordinary delivery failure; they return an Outcome saying what happened."""

    channel: str = ""

    def __init__(self, delivery):
        self.delivery = delivery

    def send(self) -> Outcome:
        raise NotImplementedError
