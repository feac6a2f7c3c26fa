"""REST API rate limits: the policy of whaleproject.throttling, checked from DRF's throttle hook.

The hook runs after DRF authenticates, so a JWT caller is known and "per user" can be keyed (the
@ratelimit decorator runs before that). A blocked call raises DRF's Throttled naming the limit
hit; the API's exception handler turns it into a 429 with Retry-After and the JSON error body.
"""

from __future__ import annotations

from rest_framework.exceptions import Throttled
from rest_framework.throttling import BaseThrottle
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import UntypedToken

from whaleproject.throttling import account_key, blocked_limit, user_key


class PolicyThrottle(BaseThrottle):
    """Counts the request against `action`'s limits; raises Throttled on the first used up."""

    action = ""

    def account(self, request, view) -> str:
        return user_key(request.user)

    def allow_request(self, request, view) -> bool:
        blocked = blocked_limit(request, self.action, self.account(request, view))
        if blocked is not None:
            raise Throttled(wait=blocked.retry_after, detail=blocked.message)
        return True


def _body_value(request, name: str):
    return request.data.get(name) if hasattr(request.data, "get") else None


class ReadRateLimit(PolicyThrottle):
    """Every authenticated read, per user."""

    action = "api-read"


class ExportRateLimit(PolicyThrottle):
    """CSV exports scan whole tables: per user, on top of the read limit."""

    action = "api-export"

    def allow_request(self, request, view) -> bool:
        renderer = getattr(request, "accepted_renderer", None)
        if getattr(renderer, "format", None) != "csv":
            return True
        return super().allow_request(request, view)


class TokenObtainRateLimit(PolicyThrottle):
    """Password guessing: per client IP and per account (user name and e-mail share one)."""

    action = "token"

    def account(self, request, view) -> str:
        return account_key(_body_value(request, "username"))


class TokenRefreshRateLimit(PolicyThrottle):
    """Per client IP, and per token owner when the refresh token's signature holds.

    The owner is only taken from a verified token, so a forged token cannot spend somebody
    else's allowance.
    """

    action = "token-refresh"

    def account(self, request, view) -> str:
        raw = _body_value(request, "refresh")
        if not isinstance(raw, str) or not raw:
            return ""
        try:
            owner = UntypedToken(raw).get(jwt_settings.USER_ID_CLAIM)
        except TokenError:
            return ""
        return f"user:{owner}" if owner is not None else ""


class SendRateLimit(PolicyThrottle):
    """Actions that send on the caller's behalf (webhook test, redeliver): as on the pages."""

    action = "send"
