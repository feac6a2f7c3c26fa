"""Forms of the alerts pages. Amounts are typed in BTC and stored in satoshis."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from alerts.models import (
    ALERT_KINDS,
    Channel,
    ChatEndpoint,
    Subscription,
    WebhookEndpoint,
    btc_from_sats,
    sats_from_btc,
)
from detection.models import EventKind, Flow

FLOW_CHOICES = Flow.choices
KIND_CHOICES = [(str(kind), EventKind(kind).label) for kind in ALERT_KINDS]


class SubscriptionForm(forms.ModelForm):
    min_btc = forms.DecimalField(
        label="Minimum amount (BTC)",
        max_digits=16,
        decimal_places=8,
        help_text="Whales of at least this many bitcoin.",
    )
    max_btc = forms.DecimalField(
        label="Maximum amount (BTC)",
        max_digits=16,
        decimal_places=8,
        required=False,
        help_text="Leave empty for no upper limit.",
    )
    flows = forms.MultipleChoiceField(
        label="Flows",
        choices=FLOW_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked means any flow.",
    )
    entities = forms.CharField(
        label="Entities",
        required=False,
        max_length=1000,
        help_text="Comma-separated, e.g. Binance, Kraken. Matches either side; empty means any.",
    )
    kinds = forms.MultipleChoiceField(
        label="Lifecycle events",
        choices=KIND_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        help_text="Which steps of a whale's life to hear about.",
    )
    webhooks = forms.ModelMultipleChoiceField(
        label="Webhook endpoints",
        queryset=WebhookEndpoint.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    chats = forms.ModelMultipleChoiceField(
        label="Chats (Telegram, Discord, Slack)",
        queryset=ChatEndpoint.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Subscription
        fields = [
            "name",
            "active",
            "min_urgency",
            "notify_unseen_confirmed",
            "email",
            "webhooks",
            "chats",
            "quiet_start",
            "quiet_end",
            "max_per_hour",
        ]
        labels = {
            "notify_unseen_confirmed": "Confirmed without being seen in the mempool",
            "min_urgency": "Minimum urgency (0 to 1)",
            "email": "Send e-mail",
            "quiet_start": "Quiet hours start",
            "quiet_end": "Quiet hours end",
            "max_per_hour": "At most this many alerts per hour",
        }
        help_texts = {
            "notify_unseen_confirmed": "Whales we only found in a block (sent straight to a "
            "miner, or mined while the watcher was away).",
            "min_urgency": "0.8 and up is high urgency (likely next block). Empty means any.",
            "email": "To the address in your account settings.",
            "quiet_start": "HH:MM in your time zone. Alerts wait and arrive as one digest.",
            "quiet_end": "HH:MM; may be earlier than the start (overnight).",
            "max_per_hour": "Beyond this, the rest of the hour arrives as one digest.",
        }
        widgets = {
            "quiet_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "quiet_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }

    field_order = [
        "name",
        "active",
        "min_btc",
        "max_btc",
        "flows",
        "entities",
        "min_urgency",
        "kinds",
        "notify_unseen_confirmed",
        "email",
        "webhooks",
        "chats",
        "quiet_start",
        "quiet_end",
        "max_per_hour",
    ]

    def __init__(self, *args, owner, **kwargs):
        self.owner = owner
        super().__init__(*args, **kwargs)
        self.instance.owner = owner
        self.fields["webhooks"].queryset = WebhookEndpoint.objects.filter(owner=owner)
        self.fields["chats"].queryset = ChatEndpoint.objects.filter(owner=owner, active=True)
        # The floor itself is enforced by Subscription.clean; this is the browser's hint.
        self.fields["min_btc"].widget.attrs["min"] = str(settings.WHALE_MIN_BTC)
        self.fields["min_urgency"].widget.attrs.update({"min": 0, "max": 1, "step": "0.01"})
        subscription = self.instance
        if subscription.pk:
            self.initial.update(
                min_btc=btc_from_sats(subscription.min_sats).normalize(),
                max_btc=btc_from_sats(subscription.max_sats),
                flows=subscription.flows,
                entities=", ".join(subscription.entities),
                kinds=subscription.kinds,
            )
        else:
            self.initial.setdefault("min_btc", Decimal(str(settings.WHALE_MIN_BTC)))
            self.initial.setdefault("kinds", [str(k) for k in ALERT_KINDS])

    def clean_entities(self):
        raw = self.cleaned_data.get("entities") or ""
        return [item.strip() for item in raw.split(",") if item.strip()]

    def clean(self):
        cleaned = super().clean()
        problem = None if self.instance.pk else Subscription.limit_problem(self.owner)
        problem = problem or Subscription.channel_problem(
            cleaned.get("email"), cleaned.get("webhooks"), cleaned.get("chats")
        )
        if problem:
            raise ValidationError(problem)
        return cleaned

    def _post_clean(self):
        subscription = self.instance
        data = self.cleaned_data
        if data.get("min_btc") is not None:
            subscription.min_sats = sats_from_btc(data["min_btc"])
        subscription.max_sats = (
            sats_from_btc(data["max_btc"]) if data.get("max_btc") is not None else None
        )
        subscription.flows = [f for f in data.get("flows", []) if f in Flow.values]
        subscription.entities = data.get("entities", [])
        subscription.set_kinds(data.get("kinds", []))
        super()._post_clean()

    def add_error(self, field, error):
        # Model errors name model fields; show them on the form field the user typed into.
        renames = {"min_sats": "min_btc", "max_sats": "max_btc", "notify_seen": "kinds"}
        if isinstance(error, ValidationError) and hasattr(error, "error_dict"):
            error = ValidationError(
                {renames.get(name, name): errs for name, errs in error.error_dict.items()}
            )
        elif field in renames:
            field = renames[field]
        super().add_error(field, error)


class WebhookEndpointForm(forms.ModelForm):
    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description"]
        labels = {"url": "Endpoint URL", "description": "Description"}
        help_texts = {
            "notify_unseen_confirmed": "Whales we only found in a block (sent straight to a "
            "miner, or mined while the watcher was away).",
            "url": "https:// recommended. Must be reachable from the internet; we sign every "
            "request (Standard Webhooks).",
            "description": "Optional, for you.",
        }
        widgets = {"url": forms.URLInput(attrs={"placeholder": "https://example.com/whales"})}

    def __init__(self, *args, owner, **kwargs):
        self.owner = owner
        super().__init__(*args, **kwargs)
        self.instance.owner = owner

    def clean(self):
        cleaned = super().clean()
        problem = None if self.instance.pk else WebhookEndpoint.limit_problem(self.owner)
        if problem:
            raise ValidationError(problem)
        return cleaned


class ChatHookForm(forms.ModelForm):
    """A Discord or Slack incoming webhook; the URL passes the same guard as webhooks."""

    class Meta:
        model = ChatEndpoint
        fields = ["url", "label"]
        labels = {"url": "Incoming-webhook URL", "label": "Name"}
        help_texts = {
            "url": "Paste the URL the service gave you. Keep it private: it lets anyone post.",
            "label": "Optional, e.g. the channel's name.",
        }
        widgets = {"url": forms.URLInput()}

    def __init__(self, *args, owner, service, **kwargs):
        self.owner = owner
        super().__init__(*args, **kwargs)
        self.instance.owner = owner
        self.instance.service = service
        placeholder = {
            Channel.DISCORD: "https://discord.com/api/webhooks/…",
            Channel.SLACK: "https://hooks.slack.com/services/…",
        }.get(service, "")
        self.fields["url"].widget.attrs["placeholder"] = placeholder

    def clean(self):
        cleaned = super().clean()
        problem = None if self.instance.pk else ChatEndpoint.limit_problem(self.owner)
        if problem:
            raise ValidationError(problem)
        return cleaned


class ChatLabelForm(forms.ModelForm):
    class Meta:
        model = ChatEndpoint
        fields = ["label"]
        labels = {"label": "Name"}


class EndpointStateForm(forms.Form):
    active = forms.BooleanField(label="Active", required=False)
