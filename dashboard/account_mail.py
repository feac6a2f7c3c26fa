"""The account e-mails: the signed confirmation link, and notices to the address on file.

A confirmation link signs the user id together with the address it confirms, so a link sent to
an earlier address cannot confirm a later one. Links expire after CONFIRM_MAX_AGE.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.urls import reverse

CONFIRM_SALT = "whalewatch.confirm-email"
CONFIRM_MAX_AGE = 3 * 24 * 3600


def confirmation_token(user) -> str:
    return signing.dumps({"u": user.pk, "e": user.email.casefold()}, salt=CONFIRM_SALT)


def read_confirmation_token(token: str) -> tuple[int, str] | None:
    """(user id, address) from a valid, unexpired link, else None."""
    try:
        data = signing.loads(token, salt=CONFIRM_SALT, max_age=CONFIRM_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return None
    return data["u"], str(data.get("e", ""))


def send_confirmation(user) -> None:
    link = settings.SITE_URL + reverse("confirm-email", args=[confirmation_token(user)])
    send_mail(
        "Confirm your e-mail address for Whale Watch",
        f"Open this link to confirm {user.email} for the Whale Watch account "
        f"{user.get_username()}:\n\n{link}\n\n"
        "No alert is sent to this address until it is confirmed. The link works for 3 days.\n"
        "If you did not ask for this, ignore this message.\n",
        None,
        [user.email],
    )


def send_signup_attempt_notice(email: str) -> None:
    """Sign-up with an address that has an account: tell its owner, reveal nothing to the form."""
    reset = settings.SITE_URL + reverse("password_reset")
    send_mail(
        "Whale Watch: someone tried to sign up with your address",
        "Someone tried to create a Whale Watch account with this e-mail address, which already "
        f"has an account. If it was you and you forgot your password, reset it here:\n\n{reset}\n\n"
        "Otherwise you can ignore this message.\n",
        None,
        [email],
    )


def send_email_changed_notice(old_address: str, new_address: str, username: str) -> None:
    send_mail(
        "Whale Watch: your e-mail address was changed",
        f"The e-mail address of the Whale Watch account {username} was changed from this "
        f"address to {new_address}. If you did not do this, reset your password now and "
        "contact the operator of this portal.\n",
        None,
        [old_address],
    )


def send_password_changed_notice(user) -> None:
    if not user.email:
        return
    send_mail(
        "Whale Watch: your password was changed",
        f"The password of the Whale Watch account {user.get_username()} was just changed. "
        "If you did not do this, reset your password now and contact the operator.\n",
        None,
        [user.email],
    )
