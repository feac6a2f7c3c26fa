"""Pages for chat channels: Connect Telegram, add a Discord or Slack hook, a channel's page
(state, why it was turned off, recent deliveries), its test message, and deleting it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from django_ratelimit.decorators import ratelimit

from alerts import delivery as engine
from alerts import telegram_bot
from alerts.forms import ChatHookForm, ChatLabelForm, EndpointStateForm
from alerts.models import Channel, ChatEndpoint, DeliveryStatus
from alerts.views import TEST_SEND_RATE

HOOK_SERVICES = {"discord": Channel.DISCORD, "slack": Channel.SLACK}


@login_required
@require_POST
def telegram_connect(request):
    """A fresh one-time deep link; the bot links the chat that sends /start <token>."""
    link = telegram_bot.start_link(request.user)
    try:
        url = telegram_bot.deep_link(link)
    except telegram_bot.TelegramNotConfigured as exc:
        link.delete()
        messages.error(request, f"Telegram is not available: {exc}")
        return redirect("alerts:index")
    return render(request, "alerts/telegram_connect.html", {"deep_link": url, "link": link})


@login_required
@require_http_methods(["GET", "POST"])
def chat_hook_create(request, service):
    if service not in HOOK_SERVICES:
        raise Http404
    form = ChatHookForm(request.POST or None, owner=request.user, service=HOOK_SERVICES[service])
    if request.method == "POST" and form.is_valid():
        chat = form.save()
        messages.success(request, f"{chat.get_service_display()} hook added. Send a test message.")
        return redirect("alerts:chat-detail", public_id=chat.public_id)
    return render(
        request,
        "alerts/chat_form.html",
        {"form": form, "service": HOOK_SERVICES[service].label},
    )


@login_required
@require_http_methods(["GET", "POST"])
def chat_detail(request, public_id):
    chat = get_object_or_404(ChatEndpoint, public_id=public_id, owner=request.user)
    if chat.service == Channel.TELEGRAM:
        form = ChatLabelForm(request.POST or None, instance=chat)
    else:
        form = ChatHookForm(
            request.POST or None, instance=chat, owner=request.user, service=chat.service
        )
    state_form = EndpointStateForm(request.POST or None, initial={"active": chat.active})
    if request.method == "POST" and form.is_valid() and state_form.is_valid():
        wants_active = state_form.cleaned_data["active"]
        if wants_active and not chat.active:
            if chat.service == Channel.TELEGRAM and chat.disabled_reason.startswith("unlinked"):
                messages.error(request, "This chat was unlinked; connect Telegram again.")
                return redirect("alerts:chat-detail", public_id=chat.public_id)
            chat.enable()
        elif not wants_active and chat.active:
            chat.active = False
            chat.disabled_reason = "turned off by its owner"
        form.save()
        messages.success(request, "Channel saved.")
        return redirect("alerts:chat-detail", public_id=chat.public_id)
    deliveries = chat.deliveries.select_related("event", "subscription")[:20]
    return render(
        request,
        "alerts/chat_detail.html",
        {"chat": chat, "form": form, "state_form": state_form, "deliveries": deliveries},
    )


@login_required
@require_POST
@ratelimit(key="user", rate=TEST_SEND_RATE, method="POST")
def chat_test(request, public_id):
    chat = get_object_or_404(ChatEndpoint, public_id=public_id, owner=request.user)
    if not chat.active:
        messages.error(request, "This channel is off; turn it on first.")
        return redirect("alerts:chat-detail", public_id=chat.public_id)
    delivery = engine.send_test_now(chat)
    if delivery.status == DeliveryStatus.DELIVERED:
        messages.success(
            request,
            f"Test message delivered: {delivery.last_status_code} in {delivery.last_duration_ms} ms.",
        )
    else:
        messages.error(request, f"Test message failed: {delivery.last_error}")
    return redirect("alerts:chat-detail", public_id=chat.public_id)


@login_required
@require_http_methods(["GET", "POST"])
def chat_delete(request, public_id):
    chat = get_object_or_404(ChatEndpoint, public_id=public_id, owner=request.user)
    if request.method == "POST":
        chat.delete()
        messages.success(request, "Channel deleted.")
        return redirect("alerts:index")
    return render(request, "alerts/confirm_delete.html", {"object": chat})
