"""Pages of the alerts app (subscriptions, webhook endpoints, delivery log), under /alerts/.

Every object is looked up through its owner, so another user's id is a plain 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST
from django_ratelimit.decorators import ratelimit

from alerts import delivery as engine
from alerts import telegram_api
from alerts.forms import EndpointStateForm, SubscriptionForm, WebhookEndpointForm
from alerts.models import ChatEndpoint, Delivery, DeliveryStatus, Subscription, WebhookEndpoint
from alerts.transports.email import subscription_id_from_token

LOG_PAGE_SIZE = 50
# "Send test event" makes an outbound request from the web process; keep it human-paced.
TEST_SEND_RATE = "10/m"


@login_required
def index(request):
    subscriptions = Subscription.objects.filter(owner=request.user).prefetch_related(
        "webhooks", "chats"
    )
    endpoints = WebhookEndpoint.objects.filter(owner=request.user)
    chats = ChatEndpoint.objects.filter(owner=request.user)
    return render(
        request,
        "alerts/index.html",
        {
            "subscriptions": subscriptions,
            "endpoints": endpoints,
            "chats": chats,
            "telegram_available": telegram_api.configured(),
        },
    )


# --- subscriptions ----------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def subscription_create(request):
    form = SubscriptionForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        subscription = form.save()
        messages.success(request, f"Subscription “{subscription.name}” created.")
        return redirect("alerts:index")
    return render(request, "alerts/subscription_form.html", {"form": form, "creating": True})


@login_required
@require_http_methods(["GET", "POST"])
def subscription_edit(request, public_id):
    subscription = get_object_or_404(Subscription, public_id=public_id, owner=request.user)
    form = SubscriptionForm(request.POST or None, instance=subscription, owner=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Subscription “{subscription.name}” saved.")
        return redirect("alerts:index")
    return render(
        request,
        "alerts/subscription_form.html",
        {"form": form, "subscription": subscription, "creating": False},
    )


@login_required
@require_POST
def subscription_toggle(request, public_id):
    subscription = get_object_or_404(Subscription, public_id=public_id, owner=request.user)
    subscription.active = not subscription.active
    subscription.save(update_fields=["active", "updated_at"])
    state = "resumed" if subscription.active else "paused"
    messages.success(request, f"Subscription “{subscription.name}” {state}.")
    return redirect("alerts:index")


@login_required
@require_http_methods(["GET", "POST"])
def subscription_delete(request, public_id):
    subscription = get_object_or_404(Subscription, public_id=public_id, owner=request.user)
    if request.method == "POST":
        subscription.delete()
        messages.success(request, f"Subscription “{subscription.name}” deleted.")
        return redirect("alerts:index")
    return render(request, "alerts/confirm_delete.html", {"object": subscription})


# --- webhook endpoints ------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def webhook_create(request):
    form = WebhookEndpointForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        endpoint = form.save()
        messages.success(request, "Endpoint added. Copy its signing secret below.")
        return redirect("alerts:webhook-detail", public_id=endpoint.public_id)
    return render(request, "alerts/webhook_form.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def webhook_detail(request, public_id):
    endpoint = get_object_or_404(WebhookEndpoint, public_id=public_id, owner=request.user)
    form = WebhookEndpointForm(request.POST or None, instance=endpoint, owner=request.user)
    state_form = EndpointStateForm(request.POST or None, initial={"active": endpoint.active})
    if request.method == "POST" and form.is_valid() and state_form.is_valid():
        if state_form.cleaned_data["active"] and not endpoint.active:
            endpoint.enable()
        elif not state_form.cleaned_data["active"] and endpoint.active:
            endpoint.active = False
            endpoint.disabled_reason = "disabled by its owner"
        form.save()
        messages.success(request, "Endpoint saved.")
        return redirect("alerts:webhook-detail", public_id=endpoint.public_id)
    deliveries = endpoint.deliveries.select_related("event", "subscription")[:20]
    return render(
        request,
        "alerts/webhook_detail.html",
        {
            "endpoint": endpoint,
            "form": form,
            "state_form": state_form,
            "deliveries": deliveries,
        },
    )


@login_required
@require_POST
def webhook_rotate(request, public_id):
    endpoint = get_object_or_404(WebhookEndpoint, public_id=public_id, owner=request.user)
    endpoint.rotate_secret()
    messages.success(
        request,
        "New secret created. The old one also signs for 24 hours, so you can switch calmly.",
    )
    return redirect("alerts:webhook-detail", public_id=endpoint.public_id)


@login_required
@require_POST
@ratelimit(key="user", rate=TEST_SEND_RATE, method="POST")
def webhook_test(request, public_id):
    endpoint = get_object_or_404(WebhookEndpoint, public_id=public_id, owner=request.user)
    delivery = engine.send_test_now(endpoint)
    if delivery.status == DeliveryStatus.DELIVERED:
        messages.success(
            request,
            f"Test event delivered: HTTP {delivery.last_status_code} "
            f"in {delivery.last_duration_ms} ms.",
        )
    else:
        messages.error(request, f"Test event failed: {delivery.last_error}")
    return redirect("alerts:webhook-detail", public_id=endpoint.public_id)


@login_required
@require_http_methods(["GET", "POST"])
def webhook_delete(request, public_id):
    endpoint = get_object_or_404(WebhookEndpoint, public_id=public_id, owner=request.user)
    if request.method == "POST":
        endpoint.delete()
        messages.success(request, "Endpoint deleted.")
        return redirect("alerts:index")
    return render(request, "alerts/confirm_delete.html", {"object": endpoint})


# --- delivery log -----------------------------------------------------------------------------


@login_required
def delivery_list(request):
    deliveries = Delivery.objects.filter(owner=request.user).select_related(
        "endpoint", "chat", "subscription", "event"
    )
    status = request.GET.get("status", "")
    if status in DeliveryStatus.values:
        deliveries = deliveries.filter(status=status)
    return render(
        request,
        "alerts/delivery_list.html",
        {
            "deliveries": deliveries[:LOG_PAGE_SIZE],
            "status": status,
            "statuses": DeliveryStatus.choices,
        },
    )


@login_required
def delivery_detail(request, public_id):
    delivery = get_object_or_404(
        Delivery.objects.select_related("endpoint", "chat", "subscription", "event__alert_fanout"),
        public_id=public_id,
        owner=request.user,
    )
    return render(
        request,
        "alerts/delivery_detail.html",
        {"delivery": delivery, "attempts": delivery.attempt_set.all()},
    )


@login_required
@require_POST
def delivery_redeliver(request, public_id):
    delivery = get_object_or_404(Delivery, public_id=public_id, owner=request.user)
    problem = redeliver_problem(delivery)
    if problem:
        messages.error(request, problem)
    else:
        with transaction.atomic():
            engine.redeliver(delivery)
        messages.success(request, "Queued for redelivery, with the same webhook-id.")
    return redirect("alerts:delivery-detail", public_id=delivery.public_id)


def redeliver_problem(delivery: Delivery) -> str:
    if not delivery.can_redeliver:
        return "This delivery is already waiting to be sent."
    if delivery.endpoint_id and not delivery.endpoint.active:
        return "The endpoint is disabled; enable it first."
    if delivery.chat_id and not delivery.chat.active:
        return "The chat channel is off; turn it on (or connect it again) first."
    return ""


# --- unsubscribe (RFC 8058) -------------------------------------------------------------------


@csrf_exempt  # mail clients POST here without cookies; the signed token is the credential
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token):
    public_id = subscription_id_from_token(token)
    subscription = Subscription.objects.filter(public_id=public_id).first() if public_id else None
    if subscription is None:
        return render(request, "alerts/unsubscribe.html", {"invalid": True}, status=404)
    if request.method == "POST":
        if subscription.active:
            subscription.active = False
            subscription.save(update_fields=["active", "updated_at"])
        if request.POST.get("List-Unsubscribe") == "One-Click":
            return HttpResponse("Unsubscribed.", content_type="text/plain")
        return render(request, "alerts/unsubscribe.html", {"done": True, "sub": subscription})
    # A GET only asks: link scanners in mail systems open every link in a message.
    return render(request, "alerts/unsubscribe.html", {"sub": subscription})
