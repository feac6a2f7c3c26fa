"""E-mail through Django's email backend (SMTP from the environment), text and HTML bodies.

Every alert carries a signed one-click unsubscribe link (RFC 8058 headers); following it pauses
the subscription. The signature is django.core.signing with its own salt, so a link cannot be
forged or reused for another subscription.
"""

from __future__ import annotations

import smtplib
import time

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string
from django.urls import reverse

from alerts import payloads
from alerts.transports.base import Outcome, Transport

UNSUBSCRIBE_SALT = "alerts.unsubscribe"


def unsubscribe_token(subscription) -> str:
    return signing.dumps(str(subscription.public_id), salt=UNSUBSCRIBE_SALT, compress=True)


def subscription_id_from_token(token: str) -> str | None:
    try:
        return signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None


def unsubscribe_url(subscription) -> str:
    path = reverse("alerts:unsubscribe", args=[unsubscribe_token(subscription)])
    return settings.SITE_URL + path


def display_currency(user) -> str:
    """The currency the user reads amounts in (Settings), USD when none is set."""
    profile = getattr(user, "profile", None)
    return getattr(profile, "display_currency", None) or "USD"


def build_message(delivery) -> EmailMultiAlternatives:
    payload = delivery.body
    subscription = delivery.subscription
    is_digest = payload.get("type") == "whale.digest"
    currency = display_currency(delivery.owner)
    whale = payload.get("data", {}).get("whale") or {}
    context = {
        "payload": payload,
        "data": payload.get("data", {}),
        "headline": payloads.subject(payload, currency),
        "moved_fiat": payloads.fiat_words(whale, "moved", currency),
        "value_fiat": payloads.fiat_words(whale, "value", currency),
        "events": [
            {"headline": payloads.headline(e, currency), **e}
            for e in payload.get("data", {}).get("events", [])
        ]
        if is_digest
        else [],
        "subscription": subscription,
        "site_url": settings.SITE_URL,
        "deliveries_url": settings.SITE_URL + reverse("alerts:deliveries"),
        "unsubscribe_url": unsubscribe_url(subscription) if subscription else None,
    }
    template = "digest" if is_digest else "alert"
    text = render_to_string(f"alerts/email/{template}.txt", context).replace("\xa0", " ")
    html = render_to_string(f"alerts/email/{template}.html", context)
    headers = {"X-Whale-Watch-Message": delivery.message_id, "Auto-Submitted": "auto-generated"}
    if context["unsubscribe_url"]:
        headers["List-Unsubscribe"] = f"<{context['unsubscribe_url']}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message = EmailMultiAlternatives(
        subject=payloads.subject(payload, currency)[:200],
        body=text,
        to=[delivery.owner.email],
        headers=headers,
    )
    message.attach_alternative(html, "text/html")
    return message


class EmailTransport(Transport):
    channel = "email"

    def send(self) -> Outcome:
        delivery = self.delivery
        if not delivery.owner.email:
            return Outcome(ok=False, error="no e-mail address on the account", retryable=False)
        message = build_message(delivery)
        started = time.monotonic()
        try:
            connection = get_connection(fail_silently=False)
            sent = connection.send_messages([message])
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            return Outcome(
                ok=False,
                status_code=codes[0] if codes else None,
                error=f"the mail server refused the address ({', '.join(map(str, codes))})",
                duration=time.monotonic() - started,
                retryable=not codes or codes[0] < 500,
            )
        except smtplib.SMTPResponseException as exc:
            return Outcome(
                ok=False,
                status_code=exc.smtp_code,
                error=f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"[:500],
                duration=time.monotonic() - started,
                retryable=exc.smtp_code < 500,
            )
        except (smtplib.SMTPException, OSError) as exc:
            return Outcome(
                ok=False,
                error=f"mail server unreachable: {exc.__class__.__name__}: {exc}"[:500],
                duration=time.monotonic() - started,
            )
        duration = time.monotonic() - started
        if not sent:
            return Outcome(ok=False, error="the email backend sent nothing", duration=duration)
        return Outcome(ok=True, status_code=250, duration=duration)
