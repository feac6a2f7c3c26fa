from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from dashboard import account_mail
from dashboard.context_processors import user_time_zone
from dashboard.feed_filters import FeedFilterForm
from dashboard.forms import AccountSettingsForm, SignUpForm
from dashboard.live import PENDING_LIMIT, feed_whales
from dashboard.models import Profile
from dashboard.stats_data import DEFAULT_RANGE, RANGES, stats_page_data
from dashboard.watch_panel import all_private_labels, watch_panel
from dashboard.whale_page import TXID_PATTERN, whale_detail_context
from detection.models import WhaleTransaction


class ThrottledLoginView(auth_views.LoginView):
    """Throttled by whaleproject.throttling.ThrottleMiddleware, like the admin log-in."""

    redirect_authenticated_user = True


@require_http_methods(["GET", "POST"])
def signup(request):
    """Creates an inactive account and mails a confirmation link; the answer is the same when
    the address already has an account (its owner gets a notice instead)."""
    if not settings.WHALE_SIGNUP_OPEN:
        raise Http404("Sign-up is closed on this portal.")
    if request.user.is_authenticated:
        return redirect("home")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        existing = form.existing_address()
        if existing is not None:
            account_mail.send_signup_attempt_notice(existing)
        else:
            user = form.save(commit=False)
            user.is_active = False  # until the link is opened
            user.save()
            Profile.objects.filter(user=user).update(email_confirmed=False)
            account_mail.send_confirmation(user)
        return redirect("signup-done")
    return render(request, "registration/signup.html", {"form": form})


@require_http_methods(["GET", "HEAD"])
def signup_done(request):
    return render(request, "registration/signup_done.html")


@require_http_methods(["GET", "HEAD"])
def confirm_email(request, token):
    found = account_mail.read_confirmation_token(token)
    user = None
    if found is not None:
        user_id, address = found
        user = get_user_model().objects.filter(pk=user_id).first()
        if user is not None and (user.email or "").casefold() != address:
            user = None  # a link for an address the account no longer has
    if user is None:
        return render(request, "registration/email_confirmed.html", {"invalid": True}, status=400)
    Profile.objects.update_or_create(user=user, defaults={"email_confirmed": True})
    if not user.is_active:
        user.is_active = True
        user.save(update_fields=["is_active"])
    return render(request, "registration/email_confirmed.html", {"confirmed_user": user})


@login_required
@require_http_methods(["GET", "POST"])
def account_settings(request):
    profile, _ = Profile.objects.get_or_create(user=request.user)
    initial = {
        "email": request.user.email,
        "time_zone": profile.time_zone,
        "display_currency": profile.display_currency,
    }
    form = AccountSettingsForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        old_address = form.save()
        if old_address is None:
            messages.success(request, "Settings saved.")
        else:
            if old_address:
                account_mail.send_email_changed_notice(
                    old_address, request.user.email, request.user.get_username()
                )
            account_mail.send_confirmation(request.user)
            messages.success(
                request, "Settings saved. Confirm the new address by the link we sent to it."
            )
        return redirect("account-settings")
    return render(request, "registration/settings.html", {"form": form})


class NotifyingPasswordChangeView(auth_views.PasswordChangeView):
    """The form asks for the old password (Django's); the address on file is told."""

    def form_valid(self, form):
        response = super().form_valid(form)
        account_mail.send_password_changed_notice(self.request.user)
        return response


@login_required
@require_http_methods(["GET", "HEAD"])
def home(request):
    """The live feed: the server renders the filtered rows, static/js/feed.js keeps them live."""
    form = FeedFilterForm(request.GET or None)
    active = form.active_filters() if request.GET else {}
    pending, recent = feed_whales(active, all_private_labels(request.user))
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
