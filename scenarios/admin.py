from django import forms
from django.contrib import admin

from recsys_site.errors import ValidationFailed
from scenarios.models import Scenario
from scenarios.services import EDITABLE_FIELDS, scenario_config_clean
from training.deletion import scenario_delete


class ScenarioAdminForm(forms.ModelForm):
    """Runs the same validation as the API, so the admin cannot store a scenario that would crash a job."""

    class Meta:
        model = Scenario
        fields = list(EDITABLE_FIELDS)

    def clean(self):
        cleaned = super().clean()
        try:
            validated = scenario_config_clean(data=cleaned, instance=self.instance if self.instance.pk else None)
        except ValidationFailed as error:
            for field, messages in error.detail.items():
                # "hyperparameters.embedding_size" goes on the hyperparameters input as "embedding size: …"
                name, _, key = field.partition(".")
                text = [f"{key.replace('_', ' ')}: {m}" if key else m for m in messages]
                self.add_error(name if name in self.fields else None, text)
            return cleaned
        cleaned["hyperparameters"] = validated["hyperparameters"]
        return cleaned


@admin.register(Scenario)
class ScenarioAdmin(admin.ModelAdmin):
    form = ScenarioAdminForm
    list_display = ("slug", "name", "algorithm", "split", "updated_at")
    search_fields = ("slug", "name")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("slice_stats", "slice_computed_at", "created_at", "updated_at")

    # The slug names the scenario's schedule, its STAR domain and its URLs: it is set once, as through the API.
    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "slug") if obj is not None else self.readonly_fields

    def get_prepopulated_fields(self, request, obj=None):
        return {} if obj is not None else self.prepopulated_fields

    # Deleting goes through the service: the history is audited and the artifacts removed.
    def delete_model(self, request, obj):
        scenario_delete(scenario=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for scenario in queryset:
            scenario_delete(scenario=scenario, actor=request.user)
