from django.contrib import admin

from catalog.models import EndUser, Interaction, Item, ItemEmbedding


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("external_id", "title", "is_active", "updated_at")
    list_filter = ("is_active",)
    search_fields = ("external_id", "title")


@admin.register(EndUser)
class EndUserAdmin(admin.ModelAdmin):
    list_display = ("external_id", "created_at")
    search_fields = ("external_id",)


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "item", "kind", "value", "occurred_at")
    list_filter = ("kind",)
    search_fields = ("user__external_id", "item__external_id", "event_id")
    raw_id_fields = ("user", "item")
    date_hierarchy = "occurred_at"
    list_select_related = ("user", "item")
    show_full_result_count = False  # counting millions of events on every page is slow


@admin.register(ItemEmbedding)
class ItemEmbeddingAdmin(admin.ModelAdmin):
    """Read-only: embeddings are written by the refresh job (``training.embeddings_service``)."""

    list_display = ("item", "encoder", "dimension", "text_sha256", "updated_at")
    list_filter = ("encoder",)
    search_fields = ("item__external_id", "item__title")
    list_select_related = ("item",)
    fields = ("item", "encoder", "dimension", "text_sha256", "updated_at")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
