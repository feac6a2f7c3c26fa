"""Discord: an incoming webhook (Server Settings → Integrations → Webhooks), `content` + one embed.

Answers as Discord documents them: 429 with a JSON body {"retry_after": <seconds>, "global": ...}
(and a Retry-After header), retried no sooner; 404 "Unknown Webhook" (deleted) and 401 "Invalid
Webhook Token" mean the hook is gone, so the channel is disabled and its page says why.
"""

from __future__ import annotations

from alerts import http
from alerts.chat_format import compose, discord_payload
from alerts.transports.base import Outcome
from alerts.transports.chathook import ChatHookTransport, json_answer
from alerts.transports.webhook import parse_retry_after


class DiscordTransport(ChatHookTransport):
    channel = "discord"

    def build(self):
        payload = self.delivery.body
        kind = (payload.get("data") or {}).get("kind", "seen")
        return discord_payload(compose(payload), kind)

    def judge_failure(self, response: http.Response, outcome: Outcome) -> Outcome:
        answer = json_answer(response)
        message = str(answer.get("message") or "")
        if message:
            outcome.error = f"HTTP {response.status}: {message}"[:500]
        if response.status == 429:
            retry_after = answer.get("retry_after")
            if isinstance(retry_after, int | float):
                outcome.retry_after = float(retry_after)
            else:
                outcome.retry_after = parse_retry_after(response.header("retry-after"))
        elif response.status in (401, 404):
            outcome.retryable = False
            outcome.disable_endpoint = (
                f"Discord answered {response.status} ({message or 'no such webhook'}): "
                "the webhook was deleted or its URL is wrong"
            )
        elif 400 <= response.status < 500:
            outcome.retryable = False
        return outcome
