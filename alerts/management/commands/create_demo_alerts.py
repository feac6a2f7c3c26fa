"""The demo user's example alerts: one webhook endpoint on the local demo receiver and one
subscription that uses it, so the alerts page and its delivery log have content."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from alerts.models import Subscription, WebhookEndpoint

DEMO_DESCRIPTION = "Demo receiver (started by make demo)"
DEMO_SUBSCRIPTION = "Demo: 100 BTC and up, any flow"
DEMO_RECEIVER_URL = "http://127.0.0.1:8099/hooks/whale-watch"


class Command(BaseCommand):
    help = "Create (or reset) the demo user's example webhook endpoint and subscription."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")
        parser.add_argument("--url", default=DEMO_RECEIVER_URL)
        parser.add_argument(
            "--remove",
            action="store_true",
            help="only remove them",
        )

    def handle(self, *args, username, url, remove, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}: run create_demo_user first")
        WebhookEndpoint.objects.filter(owner=user, description=DEMO_DESCRIPTION).delete()
        Subscription.objects.filter(owner=user, name=DEMO_SUBSCRIPTION).delete()
        if remove:
            self.stdout.write("Demo alerts removed")
            return
        endpoint = WebhookEndpoint.objects.create(owner=user, url=url, description=DEMO_DESCRIPTION)
        subscription = Subscription.objects.create(
            owner=user, name=DEMO_SUBSCRIPTION, min_sats=100 * 100_000_000, email=False
        )
        subscription.webhooks.add(endpoint)
        self.stdout.write(f"Demo alerts: subscription {subscription.name!r} → webhook {url}")
