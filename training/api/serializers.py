from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from scenarios.models import Scenario
from training.models import EmbeddingJob, Promotion, Study, TrainingRun
from training.serving import RecommendationResult


# A row shown with the username of whoever created it. No docstring: the schema would give it to every subclass.
class CreatedByModelSerializer(serializers.ModelSerializer):
    created_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(slug_field="username", read_only=True)


class TrainingRunSerializer(CreatedByModelSerializer):
    scenario: serializers.SlugRelatedField[Scenario] = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "scenario",
            "parent",
            "members",
            "algorithm",
            "params",
            "protocol",
            "seed",
            "split",
            "queue",
            "status",
            "cancel_requested",
            "phase",
            "epoch",
            "total_epochs",
            "progress",
            "device",
            "worker",
            "task_id",
            "created_by",
            "created_at",
            "started_at",
            "heartbeat_at",
            "finished_at",
            "timings",
            "error",
            "data_snapshot",
            "metrics",
            "history",
            "kept_epoch",
            "budget_stop",
            "artifact_sha256",
            "artifact_size",
            "serving",
            "low_evidence",
            "contains_deleted_users",
            "chosen_run",
            "selection",
        ]
        read_only_fields = fields

    low_evidence = serializers.BooleanField(
        read_only=True, help_text="Tested on too few users for its metrics to be trusted; promoting needs force."
    )
    contains_deleted_users = serializers.BooleanField(
        read_only=True,
        help_text="Its data held end users deleted since: their rows are cleared from its artifact and evaluation, "
        "its metrics still count them; retrain to leave them out.",
    )


class RunCreateInputSerializer(serializers.Serializer):
    algorithm = serializers.CharField(required=False, help_text="Default: the scenario's algorithm.")
    hyperparameters = serializers.DictField(
        required=False, help_text="Overrides; default: the scenario's (when the algorithm is the scenario's)."
    )
    seed = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1)
    queue = serializers.ChoiceField(choices=["auto", "cpu", "gpu"], required=False)
    parent = serializers.PrimaryKeyRelatedField(  # type: ignore[assignment]  # DRF sets declared fields apart
        queryset=TrainingRun.objects.all(), required=False, allow_null=True
    )
    members = serializers.PrimaryKeyRelatedField(  # type: ignore[assignment]  # DRF sets declared fields apart
        queryset=TrainingRun.objects.all(), many=True, required=False, help_text="With algorithm blend: the runs mixed."
    )


class PromotionSerializer(serializers.ModelSerializer):
    scenario: serializers.SlugRelatedField[Scenario] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    actor: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Promotion
        fields = ["id", "scenario", "run", "previous_run", "action", "actor", "reason", "created_at"]
        read_only_fields = fields


class RecommendationSerializer(serializers.Serializer):
    item = serializers.CharField(source="external_id", help_text="The item's external id.")
    title = serializers.CharField(help_text="The item's title.")
    score = serializers.FloatField(help_text="What the list is ranked by, highest first (see fallback).")


class RecommendationResultSerializer(serializers.Serializer):
    request_id = serializers.CharField(help_text="A new id for every answer (32 hexadecimal digits).")
    run_id = serializers.IntegerField(help_text="The run whose model answered.")
    algorithm = serializers.CharField(help_text="That run's algorithm.")
    fallback = serializers.CharField(
        allow_null=True,
        help_text="None: scored from the live history; 'training_history': from the history the model was trained "
        "on (the model cannot read a live one); 'popularity': no usable event, scores are the share of training "
        "users who had the item (0 to 1).",
    )
    history_events = serializers.IntegerField(help_text="Events of the live history the scores came from.")
    new_items_excluded = serializers.IntegerField(
        help_text="Items added after training left out of the candidates: the model cannot score them (it reads "
        "no content, or the list is a fallback), or their text is not embedded yet (a read embeds a few)."
    )
    items = RecommendationSerializer(many=True)

    @staticmethod
    def represent(result: RecommendationResult) -> dict[str, Any]:
        """The serializer's representation of ``result``, built directly: the serving endpoints answer every request
        with one, and DRF's field machinery cost a tenth of such a request. Tested equal to ``.data``."""
        return {
            "request_id": result.request_id,
            "run_id": result.run_id,
            "algorithm": result.algorithm,
            "fallback": result.fallback,
            "history_events": result.history_events,
            "new_items_excluded": result.new_items_excluded,
            "items": [{"item": item.external_id, "title": item.title, "score": item.score} for item in result.items],
        }


class RecommendationQuerySerializer(serializers.Serializer):
    user = serializers.CharField(max_length=255)
    k = serializers.IntegerField(required=False, min_value=1, max_value=1000)


class SessionRecommendationInputSerializer(serializers.Serializer):
    items = serializers.ListField(
        child=serializers.CharField(max_length=255),
        max_length=1000,
        help_text="External ids of the session's items, oldest first.",
    )
    kinds = serializers.ListField(
        child=serializers.CharField(max_length=32),
        max_length=1000,
        required=False,
        help_text="The event kind of each item (same length); kinds the scenario does not weigh are left out.",
    )
    k = serializers.IntegerField(required=False, min_value=1, max_value=1000)

    def validate(self, attrs: dict) -> dict:
        kinds = attrs.get("kinds")
        if kinds is not None and len(kinds) != len(attrs["items"]):
            raise serializers.ValidationError({"kinds": ["must give one kind per item"]})
        return attrs


MAX_PREDICTION_ITEMS = 1000


class PredictionQuerySerializer(serializers.Serializer):
    user = serializers.CharField(max_length=255, help_text="The end user's external id.")
    items = serializers.CharField(
        max_length=1_000_000,
        help_text=f"External ids of the items to predict, comma-separated (1 to {MAX_PREDICTION_ITEMS}; a repeated id "
        "counts once).",
    )

    def validate_items(self, value: str) -> list[str]:
        items = list(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
        if not items:
            raise serializers.ValidationError("name at least one item")
        if len(items) > MAX_PREDICTION_ITEMS:
            raise serializers.ValidationError(f"at most {MAX_PREDICTION_ITEMS} items per request, got {len(items)}")
        too_long = [item for item in items if len(item) > 255]
        if too_long:
            raise serializers.ValidationError(f"an item id has at most 255 characters ({too_long[0][:20]}…)")
        return items


class PredictionSerializer(serializers.Serializer):
    item = serializers.CharField(help_text="The item's external id.")
    rating = serializers.FloatField(help_text="The predicted rating, within the training ratings' range.")


class PredictionResultSerializer(serializers.Serializer):
    run_id = serializers.IntegerField(help_text="The live run that predicted.")
    predictions = PredictionSerializer(many=True, help_text="One per known item, in the order asked.")
    unknown_items = serializers.ListField(
        child=serializers.CharField(), help_text="Items asked for that the live model does not know (no ratings)."
    )


class SimilarQuerySerializer(serializers.Serializer):
    k = serializers.IntegerField(required=False, min_value=1, max_value=1000)


class EmbeddingJobSerializer(CreatedByModelSerializer):
    class Meta:
        model = EmbeddingJob
        fields = [
            "id",
            "encoder",
            "status",
            "progress",
            "counts",
            "error",
            "device",
            "task_id",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class PromoteInputSerializer(serializers.Serializer):
    scenario = serializers.SlugField(
        required=False, help_text="A member scenario of the run's group scenario to serve; default: the run's own."
    )
    force = serializers.BooleanField(
        required=False, default=False, help_text="Promote a low-evidence run (tested on few users) anyway."
    )
    reason = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=500, help_text="Why: kept in the scenario's history."
    )


class RollbackInputSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=500, help_text="Why: kept in the scenario's history."
    )


class StudyTrialSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "trial_number",
            "algorithm",
            "params",
            "status",
            "error",
            "validation_metrics",
            "epoch",
            "kept_epoch",
            "budget_stop",
        ]
        read_only_fields = fields


class StudySerializer(CreatedByModelSerializer):
    scenario: serializers.SlugRelatedField[Scenario] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    trials = serializers.SerializerMethodField(help_text="Every trial, in the order the study started them.")

    class Meta:
        model = Study
        fields = [
            "id",
            "scenario",
            "created_by",
            "algorithms",
            "search_space",
            "fixed_params",
            "objective",
            "max_trials",
            "max_seconds",
            "trial_max_seconds",
            "parallel_trials",
            "seed",
            "status",
            "best_run",
            "best_reason",
            "error",
            "created_at",
            "finished_at",
            "trials",
        ]
        read_only_fields = fields

    @extend_schema_field(StudyTrialSerializer(many=True))
    def get_trials(self, study: Study) -> list:
        return list(StudyTrialSerializer(study.trials.order_by("trial_number"), many=True).data)


class StudyCreateInputSerializer(serializers.Serializer):
    algorithms = serializers.ListField(
        child=serializers.CharField(max_length=64), min_length=1, max_length=16, help_text="Algorithms to search."
    )
    search_space = serializers.DictField(
        required=False,
        help_text='Per algorithm, per parameter: {"low", "high", "log", "step"} or {"choices": [...]}; '
        "default: each algorithm's declared search ranges.",
    )
    fixed_params = serializers.DictField(
        required=False, help_text="Per algorithm: hyperparameters every trial takes (unless searched)."
    )
    objective = serializers.CharField(
        required=False,
        max_length=32,
        help_text="A validation metric@K (maximised), or under the rating objective rmse or mae (minimised); "
        "default: rmse under the rating objective, else ndcg@10.",
    )
    max_trials = serializers.IntegerField(required=False, min_value=1, max_value=10_000)
    max_seconds = serializers.IntegerField(required=False, min_value=1, max_value=7 * 24 * 3600)
    parallel_trials = serializers.IntegerField(
        required=False, min_value=1, max_value=64, help_text="Default: every worker process that answers."
    )
