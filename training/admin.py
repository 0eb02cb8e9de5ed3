from django.contrib import admin

from recsys_site.admin_bases import ReadOnlyAdmin
from training.models import Promotion, TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("id", "scenario", "algorithm", "status", "progress", "device", "created_at", "finished_at")
    list_filter = ("status", "algorithm", "device")
    search_fields = ("scenario__slug", "algorithm", "worker")
    readonly_fields = [field.name for field in TrainingRun._meta.fields]
    list_select_related = ("scenario",)  # a run is named by its scenario's slug

    def has_add_permission(self, request):
        return False  # runs are created by the retrain action, which also dispatches them


@admin.register(Promotion)
class PromotionAdmin(ReadOnlyAdmin):
    """Read-only history: entries are written by the promote and rollback services, which also switch the
    scenario's live model; one added or edited here would record a change that never happened."""

    list_display = ("scenario", "action", "run", "previous_run", "actor", "reason", "created_at")
    list_select_related = ("scenario", "run__scenario", "previous_run__scenario", "actor")
    readonly_fields = ("scenario", "run", "previous_run", "action", "actor", "reason", "created_at")
