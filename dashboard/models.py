import zoneinfo

from django.conf import settings
from django.db import models
from django.db.models.signals import post_save
from django.dispatch import receiver

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

    def __str__(self) -> str:
        return f"profile of {self.user}"


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def create_profile(sender, instance, created, **kwargs):
    if created:
        Profile.objects.get_or_create(user=instance)
