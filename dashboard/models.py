import zoneinfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models, transaction
from django.db.models import F
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

TIME_ZONE_CHOICES = sorted((tz, tz) for tz in zoneinfo.available_timezones())


# The currencies mempool.space's `conversions` gives (protocol.md A.3).
DISPLAY_CURRENCY_CHOICES = [
    ("USD", "US dollar (USD)"),
    ("EUR", "Euro (EUR)"),
    ("GBP", "Pound sterling (GBP)"),
    ("CAD", "Canadian dollar (CAD)"),
    ("CHF", "Swiss franc (CHF)"),
    ("AUD", "Australian dollar (AUD)"),
    ("JPY", "Japanese yen (JPY)"),
]


class Profile(models.Model):
    """Per-user preferences that Django's User has no field for."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    time_zone = models.CharField(max_length=64, default="UTC", choices=TIME_ZONE_CHOICES)
    # Fiat amounts are shown in this currency when the whale has it (the source's currencies).
    display_currency = models.CharField(
        max_length=3, default="USD", choices=DISPLAY_CURRENCY_CHOICES
    )
    # Bumped to revoke every API token of the user (dashboard.api_auth): tokens carry the
    # generation they were issued in, and older ones fail.
    token_generation = models.PositiveIntegerField(default=0)
    # False from sign-up until the signed link in the welcome e-mail is opened; no alert goes to
    # an unconfirmed address. Accounts made by an operator are trusted (True).
    email_confirmed = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"profile of {self.user}"


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def create_profile(sender, instance, created, **kwargs):
    if created:
        Profile.objects.get_or_create(user=instance)


def revoke_api_tokens(user) -> None:
    """Older API access tokens fail from now on (dashboard.api_auth checks the generation);
    the user's outstanding refresh tokens are blacklisted."""
    with transaction.atomic():
        Profile.objects.get_or_create(user=user)
        Profile.objects.filter(user=user).update(token_generation=F("token_generation") + 1)
        outstanding = OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True)
        BlacklistedToken.objects.bulk_create(
            [BlacklistedToken(token=token) for token in outstanding], ignore_conflicts=True
        )


@receiver(pre_save, sender=settings.AUTH_USER_MODEL)
def note_revoking_change(sender, instance, **kwargs):
    """A new password (set_password keeps it in _password until saved) or a deactivation."""
    if instance.pk is None:
        return
    changed_password = getattr(instance, "_password", None) is not None
    deactivated = (
        not instance.is_active
        and get_user_model()._default_manager.filter(pk=instance.pk, is_active=True).exists()
    )
    instance._revokes_api_tokens = changed_password or deactivated


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def revoke_after_change(sender, instance, created, **kwargs):
    if not created and getattr(instance, "_revokes_api_tokens", False):
        instance._revokes_api_tokens = False
        revoke_api_tokens(instance)
