from django.contrib import admin

from detection.models import AddressLabel, Block, Prediction, WhaleEvent, WhaleTransaction


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


@admin.register(Block)
class BlockAdmin(admin.ModelAdmin):
    list_display = ("height", "hash", "time", "orphaned")
    list_filter = ("orphaned",)
    search_fields = ("hash",)
