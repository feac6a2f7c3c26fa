"""REST API rate limits: django-ratelimit counters in the Redis cache, checked from DRF.

The counting is django-ratelimit's (`get_usage`, the same cache keys and fixed windows as the
login form's limits). It is called from DRF's throttle hook rather than the @ratelimit decorator
because the decorator runs before DRF authenticates: a JWT caller is still anonymous there, so
"per user" could not be keyed. From the hook a blocked call raises DRF's Throttled, which the
API's exception handler turns into a 429 with Retry-After and the JSON error body.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django_ratelimit.core import get_usage
from rest_framework.throttling import BaseThrottle
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import UntypedToken

log = logging.getLogger(__name__)


# The value of a per-IP limit: django-ratelimit's own "ip" key (RATELIMIT_IP_META_KEY, the
# IPv6 /64 mask) stands in for it.
CLIENT_IP = "ip"


class RateLimit(BaseThrottle):
    """Blocks when any of `limits()` is used up; `wait()` is the longest window left."""

    group = "api"

    def limits(self, request, view) -> Iterable[tuple[str, str, str]]:
        """(limit name, key value or CLIENT_IP, rate) triples; an empty key value is not counted."""
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        self.retry_after = None
        if not settings.RATELIMIT_ENABLE:
            return True
        for name, value, rate in self.limits(request, view):
            if not value:
                continue
            key = CLIENT_IP if value is CLIENT_IP else (lambda _group, _request, v=value: v)
            try:
                usage = get_usage(
                    request, group=f"{self.group}:{name}", key=key, rate=rate, increment=True
                )
            except (KeyError, ImproperlyConfigured):
                # No client address (a WSGI server on a Unix socket without
                # RATELIMIT_IP_META_KEY): skip the per-IP limit rather than fail every request.
                log.warning("no client IP for the API rate limit; set RATELIMIT_IP_META_KEY")
                continue
            if usage is not None and usage["should_limit"]:
                self.retry_after = max(1, usage["time_left"])
                return False
        return True

    def wait(self) -> float | None:
        return self.retry_after


class ReadRateLimit(RateLimit):
    """Every authenticated read, per user."""

    group = "api-read"

    def limits(self, request, view):
        if request.user.is_authenticated:
            yield "user", str(request.user.pk), settings.WHALE_API_READ_RATE


class ExportRateLimit(RateLimit):
    """CSV exports scan whole tables: per user, on top of the read limit."""

    group = "api-export"

    def limits(self, request, view):
        renderer = getattr(request, "accepted_renderer", None)
        if request.user.is_authenticated and getattr(renderer, "format", None) == "csv":
            yield "user", str(request.user.pk), settings.WHALE_API_EXPORT_RATE


class TokenObtainRateLimit(RateLimit):
    """Password guessing: per client IP and per username tried."""

    group = "api-token"

    def limits(self, request, view):
        yield "ip", CLIENT_IP, settings.WHALE_API_TOKEN_RATE_IP
        username = request.data.get("username") if hasattr(request.data, "get") else None
        if isinstance(username, str):
            yield "username", username.strip().lower(), settings.WHALE_API_TOKEN_RATE_USERNAME


class TokenRefreshRateLimit(RateLimit):
    """Per client IP, and per token owner when the refresh token's signature holds.

    The owner is only taken from a verified token, so a forged token cannot spend somebody
    else's allowance.
    """

    group = "api-token-refresh"

    def limits(self, request, view):
        yield "ip", CLIENT_IP, settings.WHALE_API_TOKEN_RATE_IP
        raw = request.data.get("refresh") if hasattr(request.data, "get") else None
        if isinstance(raw, str) and raw:
            try:
                owner = UntypedToken(raw).get(jwt_settings.USER_ID_CLAIM)
            except TokenError:
                owner = None
            if owner is not None:
                yield "user", str(owner), settings.WHALE_API_TOKEN_RATE_USERNAME
