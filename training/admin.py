from django.contrib import admin

from training.models import Promotion, TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("id", "scenario", "algorithm", "status", "progress", "device", "created_at", "finished_at")
    list_filter = ("status", "algorithm", "device")
    search_fields = ("scenario__slug", "algorithm", "worker")
    readonly_fields = [field.name for field in TrainingRun._meta.fields]

    def has_add_permission(self, request):
        return False  # runs are created by the retrain action, which also dispatches them


@admin.register(Promotion)
class PromotionAdmin(admin.ModelAdmin):
    list_display = ("scenario", "action", "run", "previous_run", "actor", "created_at")
    readonly_fields = ("scenario", "run", "previous_run", "action", "actor", "created_at")
