"""Training runs, their per-user evaluation vectors, and promotions of runs to live."""

from django.conf import settings
from django.db import models


class RunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PRUNED = "pruned"  # a study's trial stopped early: its validation curve fell behind the other trials'


FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.PRUNED)


class TrainingRun(models.Model):
    """One training job: what was asked, on which data, how it went, and what it produced.

    Status moves queued → running → succeeded / failed / cancelled, only through
    conditional updates in ``training.services`` (never check-then-act).
    """

    scenario = models.ForeignKey("scenarios.Scenario", on_delete=models.CASCADE, related_name="runs")
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="children",
        help_text="The run this one starts from (fine-tuning) or learns from (distillation).",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    # What was asked: snapshots, so later edits of the scenario do not rewrite history.
    algorithm = models.CharField(max_length=64)
    params = models.JSONField(default=dict)
    protocol = models.JSONField(default=dict)
    seed = models.PositiveIntegerField(default=0)
    split = models.JSONField(
        default=dict,
        blank=True,
        help_text=(
            "The split evaluated on (training.splits): source scenario, protocol, shares, seed, data snapshot; "
            "once run, digests of the validation and test pairs."
        ),
    )
    queue = models.CharField(max_length=16, default="cpu")

    # A trial of a hyperparameter study: its number there, and its validation metrics (the study's objective).
    study = models.ForeignKey("Study", null=True, blank=True, on_delete=models.SET_NULL, related_name="trials")
    trial_number = models.PositiveIntegerField(null=True, blank=True)
    validation_metrics = models.JSONField(default=dict, blank=True)
    # An ``auto`` run: the candidate it chose, and what it tried and why (``training.tuning.choice``).
    chosen_run = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Of an auto run: the candidate run it chose, which promoting the auto run puts live.",
    )
    selection = models.JSONField(
        default=dict, blank=True, help_text="Of an auto run: the order test, every candidate, the winner and why."
    )
    # A blend's members: the succeeded runs whose scores it mixes.
    members = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="blends")

    # State and progress.
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    phase = models.CharField(max_length=32, blank=True, default="")
    epoch = models.PositiveIntegerField(null=True, blank=True)
    total_epochs = models.PositiveIntegerField(null=True, blank=True)
    progress = models.FloatField(default=0.0, help_text="0 to 1.")

    # Where and when it ran.
    device = models.CharField(max_length=64, blank=True, default="")
    worker = models.CharField(max_length=255, blank=True, default="")
    task_id = models.CharField(max_length=64, blank=True, default="")
    # The outbox: when the task message last reached the broker, and how many messages were sent.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    dispatch_attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds per phase: load, fit, evaluate, save.")
    error = models.TextField(blank=True, default="")

    # What it produced.
    data_snapshot = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    history = models.JSONField(default=list, blank=True, help_text="Per epoch: loss and validation metrics.")
    kept_epoch = models.PositiveIntegerField(
        null=True, blank=True, help_text="The epoch whose weights the model kept (early stopping's best)."
    )
    budget_stop = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text="Of a study's trial: why its study's wall-time budget stopped it at an epoch boundary, keeping "
        "its best epoch so far.",
    )
    artifact_path = models.CharField(max_length=500, blank=True, default="")
    artifact_sha256 = models.CharField(max_length=64, blank=True, default="")
    artifact_size = models.BigIntegerField(null=True, blank=True)
    serving = models.JSONField(
        default=dict, blank=True, help_text="Serving cost: parameter count and scoring latency (ms per batch of users)."
    )
    deleted_users = models.PositiveIntegerField(
        default=0,
        help_text="End users in the run's data who were deleted since: their rows are cleared from its "
        "artifact and evaluation, and its metrics still count them.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["scenario", "-created_at"], name="run_scenario_created"),
            models.Index(fields=["status", "heartbeat_at"], name="run_status_heartbeat"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(progress__gte=0, progress__lte=1), name="run_progress_0_1"),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} {self.algorithm} on {self.scenario.slug} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    @property
    def evaluated_users(self) -> int:
        return int(self.metrics.get("evaluated_users", 0)) if self.metrics else 0

    @property
    def contains_deleted_users(self) -> bool:
        return self.deleted_users > 0

    @property
    def low_evidence(self) -> bool:
        """Succeeded, but tested on fewer users than ``RECSYS_LOW_EVIDENCE_USERS``: its metrics are weak evidence."""
        return self.status == RunStatus.SUCCEEDED and self.evaluated_users < settings.RECSYS_LOW_EVIDENCE_USERS


class RunEvaluation(models.Model):
    """Per-user metric vectors of a run's test evaluation, for paired comparisons between runs.

    ``user_ids`` are end-user database ids; ``vectors`` maps a metric name (``ndcg@10``) to a
    list aligned with ``user_ids``. A study's trial also keeps its study objective's vector on validation
    (``validation_user_ids``, ``validation_vectors``; for a rating error each user's sum of errors, beside its
    count of ``ratings``), to tell a lead between trials from noise. Kept apart from the run so run lists stay
    light.
    """

    run = models.OneToOneField(TrainingRun, on_delete=models.CASCADE, related_name="evaluation")
    user_ids = models.JSONField(default=list)
    vectors = models.JSONField(default=dict)
    validation_user_ids = models.JSONField(default=list, blank=True)
    validation_vectors = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"evaluation of run {self.run_id}"


class PromotionAction(models.TextChoices):
    PROMOTE = "promote"
    ROLLBACK = "rollback"


class Promotion(models.Model):
    """History of a scenario's live model: who put which run live, replacing which, and when."""

    scenario = models.ForeignKey("scenarios.Scenario", on_delete=models.CASCADE, related_name="promotions")
    run = models.ForeignKey(TrainingRun, null=True, on_delete=models.SET_NULL, related_name="+")
    previous_run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=16, choices=PromotionAction.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    reason = models.TextField(blank=True, default="", help_text="Why the live model changed (required in the browser).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} run {self.run_id} on {self.scenario.slug}"


class BackgroundJob(models.Model):
    """What every job a worker runs keeps: its status, error and times, and the outbox fields (``task_id``,
    ``dispatched_at``, ``dispatch_attempts``) the sweeper reads; a running job beats (``heartbeat_at``)."""

    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    error = models.TextField(blank=True, default="")
    task_id = models.CharField(max_length=64, blank=True, default="")
    dispatched_at = models.DateTimeField(null=True, blank=True)
    dispatch_attempts = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED


class EmbeddingJob(BackgroundJob):
    """One refresh of the item text embeddings, run by the ``training.embed_items`` task.

    Status moves queued → running → succeeded / failed through conditional updates in
    ``training.embeddings_service``; ``progress`` is the share of the items to embed that are done.
    """

    encoder = models.CharField(max_length=64)
    progress = models.FloatField(default=0.0, help_text="0 to 1.")
    counts = models.JSONField(default=dict, blank=True, help_text="Items examined, computed, unchanged, empty.")
    device = models.CharField(max_length=64, blank=True, default="")

    class Meta(BackgroundJob.Meta):
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__gte=0, progress__lte=1), name="embedding_job_progress_0_1"
            ),
        ]

    def __str__(self) -> str:
        return f"embedding job {self.pk} ({self.status})"


class MatrixCell(models.Model):
    """One run evaluated on one member scenario's test part of its group split (the scenario × model matrix).

    ``split`` records the group split the cell was computed on (source, protocol, shares, seed, data snapshot and
    a digest of the member's test pairs): a cell whose split is not the group's current one is stale.
    ``metrics`` holds every ranking metric at every K of the group's K list; ``validation`` the run's NDCG@10 on
    the member's validation part, which picks the default baseline.
    """

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="matrix_cells")
    scenario = models.ForeignKey("scenarios.Scenario", on_delete=models.CASCADE, related_name="matrix_cells")
    metrics = models.JSONField(default=dict)
    validation = models.JSONField(default=dict, blank=True)
    split = models.JSONField(default=dict, blank=True)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "scenario"], name="matrix_cell_run_scenario")]

    def __str__(self) -> str:
        return f"run {self.run_id} on scenario {self.scenario_id}"


class StudyStatus(models.TextChoices):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Study(models.Model):
    """A hyperparameter search on a scenario: Optuna proposes trials, each a child run on the Celery queues.

    The trials are the runs whose ``study`` is this one; their parameters, per-epoch validation curves and
    objective values are what the sampler and the pruner read (``training.tuning``), so the study lives in
    the project's own tables. Status moves running → succeeded / failed / cancelled by conditional updates.
    """

    scenario = models.ForeignKey("scenarios.Scenario", on_delete=models.CASCADE, related_name="studies")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    algorithms = models.JSONField(default=list)
    search_space = models.JSONField(default=dict, help_text="Per algorithm: per parameter, a range or choices.")
    fixed_params = models.JSONField(default=dict, blank=True, help_text="Per algorithm: values not searched.")
    objective = models.CharField(
        max_length=32,
        default="ndcg@10",
        help_text="A validation metric at K, maximised, or under the rating objective rmse or mae, minimised.",
    )
    max_trials = models.PositiveIntegerField(null=True, blank=True)
    max_seconds = models.PositiveIntegerField(null=True, blank=True)
    trial_max_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Each trial's wall-time cap, a share of max_seconds: a trial past it, or past the study's budget, "
        "stops at its next epoch boundary with its best epoch so far.",
    )
    parallel_trials = models.PositiveIntegerField(default=1)
    seed = models.PositiveIntegerField(default=0)
    tune_top = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="After each algorithm's defaults trial, tune only this many algorithms, the best on defaults.",
    )
    auto_run = models.OneToOneField(
        TrainingRun,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="auto_study",
        help_text="The auto run whose search this study is: it ends with the study.",
    )
    status = models.CharField(max_length=16, choices=StudyStatus.choices, default=StudyStatus.RUNNING)
    best_run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    best_reason = models.TextField(blank=True, default="", help_text="Why the best trial is the best.")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return f"study {self.pk} on {self.scenario.slug} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status != StudyStatus.RUNNING


class MatrixJob(BackgroundJob):
    """One computation of a group's missing and stale matrix cells, run by the ``training.group_matrix`` task.

    Status moves queued → running → succeeded / failed through conditional updates in ``training.matrix``. The
    row is an outbox like a run's (``training.dispatch``), and a running job beats like a run, so the sweeper
    sends a lost job again and ends one whose worker died.
    """

    group = models.ForeignKey("scenarios.Scenario", on_delete=models.CASCADE, related_name="matrix_jobs")
    cells_computed = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"matrix job {self.pk} of scenario {self.group_id} ({self.status})"
