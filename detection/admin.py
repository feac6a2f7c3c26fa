import time

from django.contrib import admin

from detection.domain.prices import format_money
from detection.models import AddressLabel, Block, Prediction, WhaleEvent, WhaleTransaction
from detection.prices import latest_prices


@admin.register(AddressLabel)
class AddressLabelAdmin(admin.ModelAdmin):
    list_display = ("address", "entity", "kind", "source", "confidence", "derived", "updated_at")
    list_filter = ("kind", "source")
    search_fields = ("address", "entity")
    readonly_fields = ("derived_from_txid", "created_at", "updated_at")

    @admin.display(boolean=True, description="derived")
    def derived(self, obj):
        return obj.is_derived


class EventInline(admin.TabularInline):
    model = WhaleEvent
    fk_name = "whale"
    extra = 0
    can_delete = False
    fields = ("kind", "sequence", "occurred_at", "details")
    readonly_fields = fields


class PredictionInline(admin.TabularInline):
    model = Prediction
    extra = 0
    can_delete = False
    fields = (
        "made_at",
        "tip_height",
        "predicted_blocks",
        "urgency",
        "band",
        "outcome",
        "actual_blocks",
        "hit",
    )
    readonly_fields = fields


@admin.register(WhaleTransaction)
class WhaleTransactionAdmin(admin.ModelAdmin):
    list_display = (
        "txid",
        "value_btc",
        "moved_btc",
        "moved_confidence",
        "value_usd",
        "moved_usd",
        "flow",
        "from_entity",
        "to_entity",
        "status",
        "first_seen_at",
    )
    list_filter = ("status", "flow", "conflict")
    search_fields = ("txid", "from_entity", "to_entity")
    date_hierarchy = "first_seen_at"
    raw_id_fields = ("chain", "replaced_by")
    inlines = (EventInline, PredictionInline)
    readonly_fields = ("fiat", "change_outputs", "change_methods")
    # Shows the latest fiat prices and their age above the list.
    change_list_template = "admin/detection/whaletransaction/change_list.html"

    def changelist_view(self, request, extra_context=None):
        now = time.time()
        prices = [
            {
                "code": code,
                "price": format_money(quote.price, code),
                "age_seconds": max(0, round(now - quote.received_at)),
            }
            for code, quote in sorted(latest_prices().items())
        ]
        return super().changelist_view(request, {**(extra_context or {}), "latest_prices": prices})


@admin.register(Block)
class BlockAdmin(admin.ModelAdmin):
    list_display = ("height", "hash", "time", "orphaned")
    list_filter = ("orphaned",)
    search_fields = ("hash",)
