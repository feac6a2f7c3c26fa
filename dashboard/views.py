import math

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_http_methods
from django_ratelimit.decorators import ratelimit

from dashboard.context_processors import user_time_zone
from dashboard.feed_filters import FeedFilterForm
from dashboard.forms import AccountSettingsForm, SignUpForm
from dashboard.live import PENDING_LIMIT, feed_whales
from dashboard.models import Profile
from dashboard.stats_data import DEFAULT_RANGE, RANGES, stats_page_data
from dashboard.watch_panel import watch_panel
from dashboard.whale_page import TXID_PATTERN, whale_detail_context
from detection.models import WhaleTransaction


def _retry_after(rate: str) -> int:
    """Seconds until a django-ratelimit window ("5/m", "100/h") resets, at most."""
    periods = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    _, _, period = rate.partition("/")
    digits = "".join(ch for ch in period if ch.isdigit())
    unit = period[len(digits) :] or "s"
    return int(digits or 1) * periods.get(unit[0], 60)


def ratelimited(request, exception):
    """django-ratelimit sends every blocked request here (RATELIMIT_VIEW): 429, never 403."""
    retry = _retry_after(settings.WHALE_LOGIN_RATE_USERNAME)
    if request.path.startswith("/api/"):
        from django.http import JsonResponse

        response = JsonResponse(
            {"error": {"code": "throttled", "message": "Too many requests; retry later."}},
            status=429,
        )
    else:
        response = render(request, "registration/ratelimited.html", status=429)
    response["Retry-After"] = str(math.ceil(retry))
    return response


@method_decorator(
    ratelimit(key="ip", rate=lambda g, r: settings.WHALE_LOGIN_RATE_IP, method="POST"),
    name="post",
)
@method_decorator(
    ratelimit(
        key=lambda group, request: (request.POST.get("username") or "").strip().lower(),
        rate=lambda g, r: settings.WHALE_LOGIN_RATE_USERNAME,
        method="POST",
    ),
    name="post",
)
class ThrottledLoginView(auth_views.LoginView):
    redirect_authenticated_user = True


@require_http_methods(["GET", "POST"])
def signup(request):
    if not settings.WHALE_SIGNUP_OPEN:
        raise Http404("Sign-up is closed on this portal.")
    if request.user.is_authenticated:
        return redirect("home")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="dashboard.auth.UsernameOrEmailBackend")
        messages.success(request, "Welcome to Whale Watch.")
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def account_settings(request):
    profile, _ = Profile.objects.get_or_create(user=request.user)
    initial = {"email": request.user.email, "time_zone": profile.time_zone}
    form = AccountSettingsForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Settings saved.")
        return redirect("account-settings")
    return render(request, "registration/settings.html", {"form": form})


@login_required
@require_http_methods(["GET", "HEAD"])
def home(request):
    """The live feed: the server renders the filtered rows, static/js/feed.js keeps them live."""
    form = FeedFilterForm(request.GET or None)
    active = form.active_filters() if request.GET else {}
    pending, recent = feed_whales(active)
    context = {
        "form": form,
        "filters": active,
        "problems": form.problems() if request.GET else [],
        "pending": pending,
        "recent": recent,
        "pending_limit": PENDING_LIMIT,
        "min_btc": settings.WHALE_MIN_BTC,
    }
    # Bad filter values are the request's fault: say so (400) but still show the valid ones.
    status = 400 if context["problems"] else 200
    return render(request, "dashboard/home.html", context, status=status)


@login_required
@require_http_methods(["GET", "HEAD"])
def whale_detail(request, txid: str):
    if not TXID_PATTERN.fullmatch(txid):
        raise Http404("Not a transaction id.")
    whale = get_object_or_404(
        WhaleTransaction.objects.select_related("chain", "replaced_by"), txid=txid.lower()
    )
    context = whale_detail_context(whale)
    context.update(watch_panel(request.user, whale))  # watchlists (issue 21): the viewer's own
    return render(request, "dashboard/whale_detail.html", context)


@login_required
@require_http_methods(["GET", "HEAD"])
def stats_page(request):
    range_key = request.GET.get("range", DEFAULT_RANGE)
    if range_key not in RANGES:
        range_key = DEFAULT_RANGE
    data = stats_page_data(range_key, user_time_zone(request.user))
    return render(request, "dashboard/stats.html", {**data, "ranges": RANGES.values()})
