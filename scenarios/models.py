"""Scenarios: one recommendation surface each, with its data slice, protocol, model and serving policy."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


def default_k_list() -> list[int]:
    return [5, 10, 20]


# The fields that choose a scenario's events (its slice of the catalogue), in the order pages list them.
SLICE_FIELDS = (
    "include_categories",
    "exclude_categories",
    "event_weights",
    "min_value",
    "min_user_events",
    "min_item_events",
)


class SplitKind(models.TextChoices):
    TEMPORAL = "temporal", "Temporal (global time cut)"
    LEAVE_LAST_OUT = "leave_last_out", "Leave last out (per user)"
    RANDOM = "random", "Random ratio (per user)"


class Objective(models.TextChoices):
    RANKING = "ranking", "Ranking (implicit feedback)"
    RATING = "rating", "Rating (explicit ratings)"


class ComputeQueue(models.TextChoices):
    AUTO = "auto", "Auto (GPU when GPU workers are configured)"
    CPU = "cpu", "CPU workers"
    GPU = "gpu", "GPU workers"


class Scenario(models.Model):
    """A recommendation surface: which items and events it sees, how it is evaluated, trained and served.

    Validation (hyperparameters against the algorithm registry, category and
    kind lists, shares) lives in ``scenarios.services``; the model only stores.
    """

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="members",
        help_text="A group scenario whose slice covers this one (for shared pretraining).",
    )

    # The slice of the catalogue this scenario sees.
    include_categories = models.JSONField(default=list, blank=True, help_text="Empty: every category.")
    exclude_categories = models.JSONField(default=list, blank=True)
    event_weights = models.JSONField(
        default=dict, blank=True, help_text="Event kind → weight. Empty: every kind with weight 1."
    )
    min_value = models.FloatField(null=True, blank=True, help_text="Drop events whose value is below this.")
    min_user_events = models.PositiveIntegerField(default=1)
    min_item_events = models.PositiveIntegerField(default=1)

    # Evaluation protocol.
    split = models.CharField(max_length=32, choices=SplitKind.choices, default=SplitKind.RANDOM)
    validation_share = models.FloatField(default=0.1, validators=[MinValueValidator(0.0), MaxValueValidator(0.5)])
    test_share = models.FloatField(default=0.1, validators=[MinValueValidator(0.0), MaxValueValidator(0.5)])
    k_list = models.JSONField(default=default_k_list)
    objective = models.CharField(
        max_length=16,
        choices=Objective.choices,
        default=Objective.RANKING,
        help_text="Rating: models learn the events' values as ratings and are also measured by RMSE and MAE.",
    )

    # Model.
    algorithm = models.CharField(max_length=64, default="popularity")
    hyperparameters = models.JSONField(default=dict, blank=True)
    compute_queue = models.CharField(max_length=8, choices=ComputeQueue.choices, default=ComputeQueue.AUTO)
    seed = models.PositiveIntegerField(default=42)

    # Serving policy.
    default_k = models.PositiveIntegerField(default=10, validators=[MinValueValidator(1), MaxValueValidator(1000)])
    exclude_seen = models.BooleanField(default=True)
    serving_policy = models.JSONField(
        default=dict,
        blank=True,
        help_text="Rules applied to every served list (see scenarios.policy): exclusions, caps, boosts.",
    )

    # The run serving this scenario (promoted by training.services.training_run_promote).
    live_run = models.ForeignKey(
        "training.TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # The last computed slice size (also computed on demand).
    slice_stats = models.JSONField(default=dict, blank=True)
    slice_computed_at = models.DateTimeField(null=True, blank=True)
    # The outbox of the slice refresh: asked for when, and when its message last reached the broker.
    slice_requested_at = models.DateTimeField(null=True, blank=True)
    slice_dispatched_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(validation_share__gte=0, validation_share__lte=0.5)
                & models.Q(test_share__gte=0, test_share__lte=0.5),
                name="scenario_shares_in_range",
            ),
            models.CheckConstraint(condition=models.Q(default_k__gte=1), name="scenario_default_k_positive"),
        ]

    def __str__(self) -> str:
        return self.name
