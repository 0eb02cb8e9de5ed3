from django.contrib import admin

from catalog.models import EndUser, Interaction, Item, ItemEmbedding
from recsys_site.admin_bases import ListAndDeleteAdmin
from recsys_site.serving_version import catalog_version_bump
from training.deletion import end_user_delete


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("external_id", "title", "is_active", "updated_at")
    list_filter = ("is_active",)
    search_fields = ("external_id", "title")

    # Web processes keep items' names and serving rules per catalogue version: an edit here must change it too.
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        catalog_version_bump()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        catalog_version_bump()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        catalog_version_bump()


@admin.register(EndUser)
class EndUserAdmin(admin.ModelAdmin):
    list_display = ("external_id", "created_at")
    search_fields = ("external_id",)

    # Deleting goes through the service: their data leaves every run, and the deletion is audited.
    def delete_model(self, request, obj):
        end_user_delete(user=obj, actor=request.user)

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # Their events go with them: deleting an end user needs no right to delete events one by one.
        perms_needed.discard(Interaction._meta.verbose_name)
        return deleted, counts, perms_needed, protected

    def delete_queryset(self, request, queryset):
        for user in queryset:
            end_user_delete(user=user, actor=request.user)


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
class ItemEmbeddingAdmin(ListAndDeleteAdmin):
    """Read-only: embeddings are written by the refresh job (``training.embeddings_service``)."""

    list_display = ("item", "encoder", "dimension", "text_sha256", "updated_at")
    list_filter = ("encoder",)
    search_fields = ("item__external_id", "item__title")
    list_select_related = ("item",)
    fields = ("item", "encoder", "dimension", "text_sha256", "updated_at")
    readonly_fields = fields
