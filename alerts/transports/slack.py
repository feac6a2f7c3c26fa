"""Slack: an incoming webhook (a Slack app with Incoming Webhooks), `text` + Block Kit blocks.

Answers as Slack documents them: a plain-text body naming the error. 429 comes with Retry-After
(seconds) and is retried no sooner; 404 (`invalid_token`, `channel_not_found`, `no_service`) and
410 (`channel_is_archived`) mean the hook can no longer post, so the channel is disabled.
"""

from __future__ import annotations

from alerts import http
from alerts.chat_format import compose, slack_payload
from alerts.transports.base import Outcome
from alerts.transports.chathook import ChatHookTransport
from alerts.transports.webhook import parse_retry_after


class SlackTransport(ChatHookTransport):
    channel = "slack"

    def build(self):
        return slack_payload(compose(self.delivery.body))

    def judge_failure(self, response: http.Response, outcome: Outcome) -> Outcome:
        reason = response.body[:200].decode("utf-8", errors="replace").strip()
        if reason:
            outcome.error = f"HTTP {response.status}: {reason}"[:500]
        if response.status == 429:
            outcome.retry_after = parse_retry_after(response.header("retry-after"))
        elif response.status in (404, 410):
            outcome.retryable = False
            outcome.disable_endpoint = (
                f"Slack answered {response.status} ({reason or 'gone'}): "
                "the webhook was removed or its channel is gone"
            )
        elif 400 <= response.status < 500:
            outcome.retryable = False
        return outcome
