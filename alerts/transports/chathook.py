"""What Discord's and Slack's incoming webhooks share: a JSON POST through the SSRF guard,
paced per hook (alerts.pacing), answers judged by each service's rules."""

from __future__ import annotations

import json
import time
from typing import Any

from alerts import http, pacing
from alerts.transports.base import Outcome, Transport
from alerts.transports.webhook import excerpt


def body_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


class ChatHookTransport(Transport):
    def build(self) -> dict[str, Any]:
        raise NotImplementedError

    def send(self) -> Outcome:
        chat = self.delivery.chat
        slot = pacing.wait_for_slot(self.channel, str(chat.public_id))
        if not slot.booked:
            return Outcome(
                ok=False,
                error=f"paced: no free slot for this hook for {slot.wait:.1f} s",
                retry_after=slot.wait,
                paced=True,
            )
        started = time.monotonic()
        try:
            response = http.post(chat.url, body_bytes(self.build()), {})
        except http.BlockedDestination as exc:
            return Outcome(
                ok=False, error=str(exc), duration=time.monotonic() - started, retryable=False
            )
        except http.OutboundError as exc:
            return Outcome(ok=False, error=str(exc), duration=time.monotonic() - started)
        outcome = Outcome(
            ok=200 <= response.status < 300,
            status_code=response.status,
            duration=response.duration,
            response_excerpt=excerpt(response),
        )
        if outcome.ok:
            return outcome
        outcome.error = f"HTTP {response.status}"
        return self.judge_failure(response, outcome)

    def judge_failure(self, response: http.Response, outcome: Outcome) -> Outcome:
        raise NotImplementedError


def json_answer(response: http.Response) -> dict[str, Any]:
    try:
        answer = json.loads(response.body)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}
