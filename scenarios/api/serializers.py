from rest_framework import serializers

from scenarios.models import Scenario
from scenarios.services import EDITABLE_FIELDS


class ScenarioSerializer(serializers.ModelSerializer):
    """A scenario's configuration. Cross-field rules and hyperparameters are validated by the service."""

    parent = serializers.SlugRelatedField(  # type: ignore[assignment]  # DRF sets declared fields apart
        slug_field="slug", queryset=Scenario.objects.all(), required=False, allow_null=True
    )
    include_categories = serializers.ListField(child=serializers.CharField(max_length=200), required=False)
    exclude_categories = serializers.ListField(child=serializers.CharField(max_length=200), required=False)
    event_weights = serializers.DictField(child=serializers.FloatField(), required=False)
    k_list = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=1000), required=False)
    hyperparameters = serializers.DictField(required=False)
    serving_policy = serializers.JSONField(
        required=False,
        help_text="Rules for every served list, each optional: exclude_items (item ids), exclude_categories, "
        "max_per_category (1-1000), boost_categories (category → weight from -1 to 1, added to scores rescaled "
        "to 0-1), exclude_older_than (YYYY-MM-DD: items added before it are not served).",
    )

    class Meta:
        model = Scenario
        fields = ["id", *EDITABLE_FIELDS, "slice_stats", "slice_computed_at", "created_at", "updated_at"]
        read_only_fields = ["id", "slice_stats", "slice_computed_at", "created_at", "updated_at"]


class SliceSizeSerializer(serializers.Serializer):
    users = serializers.IntegerField()
    repeat_users = serializers.IntegerField(help_text="Users with 2 or more events (the ones a split can test).")
    items = serializers.IntegerField()
    events = serializers.IntegerField()
    first_event_at = serializers.DateTimeField(allow_null=True)
    last_event_at = serializers.DateTimeField(allow_null=True)


class QueuedSerializer(serializers.Serializer):
    task_id = serializers.CharField()
    status = serializers.CharField()


class AlgorithmParamSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()
    default = serializers.JSONField()
    minimum = serializers.FloatField(allow_null=True)
    maximum = serializers.FloatField(allow_null=True)
    choices = serializers.ListField(child=serializers.JSONField(), allow_null=True)
    help = serializers.CharField()


class AlgorithmSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # DRF sets declared fields apart
    family = serializers.CharField()
    description = serializers.CharField()
    params = AlgorithmParamSerializer(many=True)
