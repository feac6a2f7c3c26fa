"""The alerts app's figures on /metrics, read at scrape time (registered in AlertsConfig.ready)."""

from __future__ import annotations

from django.db import close_old_connections
from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric

from alerts.models import Delivery, DeliveryStatus
from whaleproject.metrics import NAMESPACE, CachedCollector


class DeliveryCollector(CachedCollector):
    ttl = 30.0

    def produce(self) -> list[Metric]:
        close_old_connections()
        family = GaugeMetricFamily(
            f"{NAMESPACE}_alert_deliveries",
            "Alert deliveries in the outbox by status and channel (email, webhook).",
            labels=["status", "channel"],
        )
        counts = {
            (row["status"], row["channel"]): row["n"]
            for row in Delivery.objects.values("status", "channel").annotate(n=Count("id"))
        }
        channels = sorted({channel for _, channel in counts} | {"email", "webhook"})
        for status in DeliveryStatus.values:
            for channel in channels:
                family.add_metric([status, channel], counts.get((status, channel), 0))
        return [family]
