import zoneinfo

from django.conf import settings

from dashboard.source_health import current_source_health
from detection.models import Flow
from detection.stats import accuracy_alarm_state


def user_time_zone(user) -> zoneinfo.ZoneInfo:
    """The zone the user chose in their settings (Profile), UTC for anyone else."""
    name = "UTC"
    if user is not None and user.is_authenticated:
        profile = getattr(user, "profile", None)
        name = getattr(profile, "time_zone", None) or "UTC"
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def user_display_currency(user) -> str:
    """The currency the user reads fiat amounts in (Settings), USD by default."""
    profile = getattr(user, "profile", None)
    return getattr(profile, "display_currency", None) or "USD"


def site(request):
    context = {
        "site_url": settings.SITE_URL,
        "signup_open": settings.WHALE_SIGNUP_OPEN,
        # For the scripts (json_script in base.html): the server's words, not a copy in JS.
        "flow_labels": dict(Flow.choices),
    }
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return context
    context.update(
        user_time_zone=user_time_zone(user),
        display_currency=user_display_currency(user),
        source_health=current_source_health(),
    )
    if user.is_staff:
        try:
            context["accuracy_alarm"] = accuracy_alarm_state()
        except Exception:
            context["accuracy_alarm"] = None  # the cache is Redis; its outage shows elsewhere
    return context
