"""The one throttling policy: which action is limited, by what key, at what rate.

Every way in goes through `blocked_limit`: the HTML forms (log-in, admin log-in, password reset,
sign-up, e-mail change, sending a test event, a chat test message or a redelivery) through `ThrottleMiddleware`, and
the REST API through the DRF throttles in detection.api.throttling, which call the same function.
Counting is django-ratelimit's public `get_usage` on the Redis cache (fixed windows).

Keys: "ip" is django-ratelimit's own client address (RATELIMIT_IP_META_KEY, IPv6 /64). An
account key is the user's id whenever the name given (user name or e-mail address, after
NFKC + casefold, as Django's forms normalise them) belongs to an account, so the user name, the
e-mail address and their full-width or upper-case spellings all spend one allowance.
"""

from __future__ import annotations

import logging
import math
import unicodedata
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q
from django.http import JsonResponse
from django.shortcuts import render
from django_ratelimit.core import get_usage

log = logging.getLogger(__name__)

IP = "ip"
ACCOUNT = "account"

# action -> ((key kind, setting holding the rate), ...). Settings are read per request so a
# test or an operator's override takes effect at once.
POLICY: dict[str, tuple[tuple[str, str], ...]] = {
    "login": ((IP, "WHALE_LOGIN_RATE_IP"), (ACCOUNT, "WHALE_LOGIN_RATE_USERNAME")),
    "token": ((IP, "WHALE_API_TOKEN_RATE_IP"), (ACCOUNT, "WHALE_API_TOKEN_RATE_USERNAME")),
    "token-refresh": (
        (IP, "WHALE_API_TOKEN_RATE_IP"),
        (ACCOUNT, "WHALE_API_TOKEN_RATE_USERNAME"),
    ),
    "password-reset": (
        (IP, "WHALE_PASSWORD_RESET_RATE_IP"),
        (ACCOUNT, "WHALE_PASSWORD_RESET_RATE_ACCOUNT"),
    ),
    "signup": ((IP, "WHALE_SIGNUP_RATE_IP"),),
    "email-change": ((ACCOUNT, "WHALE_EMAIL_CHANGE_RATE"),),
    # Sends an outbound request (or queues one) on the caller's behalf: pages and API alike.
    "send": ((ACCOUNT, "WHALE_SEND_RATE"),),
    "api-read": ((ACCOUNT, "WHALE_API_READ_RATE"),),
    "api-export": ((ACCOUNT, "WHALE_API_EXPORT_RATE"),),
}

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Blocked:
    """The limit that was hit: its rate ("5/m") and the seconds left in its window."""

    action: str
    kind: str
    rate: str
    retry_after: int

    @property
    def message(self) -> str:
        return (
            f"Too many requests: the {self.action} limit per {self.kind} is {self.rate}. "
            f"Retry in {self.retry_after} s."
        )


def normalise(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip().casefold()


def account_key(name: str | None) -> str:
    """The bucket of a user name or e-mail address: the account's id when one matches."""
    if not isinstance(name, str) or not name.strip():
        return ""
    wanted = normalise(name)
    # Compared in Python after a case-insensitive pre-filter, so NFKC forms match as well.
    candidates = get_user_model()._default_manager.filter(
        Q(username__iexact=unicodedata.normalize("NFKC", name).strip())
        | Q(email__iexact=unicodedata.normalize("NFKC", name).strip())
    )
    for user in candidates[:3]:
        if wanted in (normalise(user.get_username()), normalise(user.email or "")):
            return f"user:{user.pk}"
    return f"name:{wanted}"


def user_key(user) -> str:
    return f"user:{user.pk}" if user is not None and user.is_authenticated else ""


def window_seconds(rate: str) -> int:
    _, _, period = rate.partition("/")
    digits = "".join(ch for ch in period if ch.isdigit())
    return int(digits or 1) * _PERIODS[period[len(digits) :] or "s"]


def blocked_limit(request, action: str, account: str = "") -> Blocked | None:
    """Counts one request against every limit of `action`; the first limit used up, or None.

    An empty `account` (no name given, an anonymous caller) skips the per-account limit.
    """
    if not settings.RATELIMIT_ENABLE:
        return None
    for kind, setting in POLICY[action]:
        rate = getattr(settings, setting)
        if kind == ACCOUNT and not account:
            continue
        key = IP if kind == IP else (lambda _group, _request, value=account: value)
        try:
            usage = get_usage(
                request, group=f"throttle:{action}:{kind}", key=key, rate=rate, increment=True
            )
        except (KeyError, ImproperlyConfigured):
            # No client address (a server on a Unix socket without RATELIMIT_IP_META_KEY): the
            # other limits still hold; refusing every request would be worse.
            log.warning("no client IP for the %s rate limit; set RATELIMIT_IP_META_KEY", action)
            continue
        if usage is not None and usage["should_limit"]:
            left = usage["time_left"]
            retry = left if left > 0 else window_seconds(rate)
            return Blocked(action, kind, rate, max(1, math.ceil(retry)))
    return None


def throttled_response(request, blocked: Blocked):
    """429 with Retry-After from the limit hit: JSON under /api/, the page elsewhere."""
    if request.path.startswith("/api/"):
        body = {"error": {"code": "throttled", "message": blocked.message}}
        response = JsonResponse(body, status=429)
    else:
        response = render(
            request, "registration/ratelimited.html", {"blocked": blocked}, status=429
        )
    response["Retry-After"] = str(blocked.retry_after)
    return response


def _form_value(request, name: str) -> str:
    value = request.POST.get(name)
    return value if isinstance(value, str) else ""


def _login_account(request) -> str:
    return account_key(_form_value(request, "username"))


def _reset_account(request) -> str:
    return account_key(_form_value(request, "email"))


def _email_change_account(request) -> str:
    """Only a POST that changes the address counts; saving the time zone alone does not."""
    new = _form_value(request, "email")
    if not new or normalise(new) == normalise(request.user.email or ""):
        return ""
    return user_key(request.user)


# URL name -> (action, account key of the request). Only POSTs are counted.
FORM_ACTIONS = {
    "login": ("login", _login_account),
    "admin:login": ("login", _login_account),
    "password_reset": ("password-reset", _reset_account),
    "signup": ("signup", lambda request: ""),
    "account-settings": ("email-change", _email_change_account),
    "alerts:webhook-test": ("send", lambda request: user_key(request.user)),
    "alerts:delivery-redeliver": ("send", lambda request: user_key(request.user)),
    "alerts:chat-test": ("send", lambda request: user_key(request.user)),
}


class ThrottleMiddleware:
    """Applies POLICY to the HTML forms, before their view runs (after authentication)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method != "POST" or request.resolver_match is None:
            return None
        entry = FORM_ACTIONS.get(request.resolver_match.view_name)
        if entry is None:
            return None
        action, account_of = entry
        blocked = blocked_limit(request, action, account_of(request))
        if blocked is None:
            return None
        return throttled_response(request, blocked)


def ratelimited(request, exception):
    """RATELIMIT_VIEW, for any @ratelimit decorator outside this policy: 429, never 403."""
    return throttled_response(request, Blocked("request", "caller", "its limit", 60))
