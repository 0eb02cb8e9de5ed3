"""The demo's runs: a baseline and a second model for every demo scenario (a small SASRec; a neural MF where the
scenario predicts ratings), trained on the worker, and the best of each scenario promoted as the runs finish (so
the pages and the API work while the rest trains); then an ``auto`` run and a hyperparameter study, small enough
to finish in a few minutes, so that every kind of page has an example."""

from __future__ import annotations

from collections.abc import Iterable

from scenarios.models import Objective, Scenario
from training.matrix import group_matrix_queue
from training.models import Promotion, RunStatus, Study, TrainingRun
from training.services import training_run_create, training_run_promote
from training.tuning.studies import study_create

# Small enough to finish in about a minute per scenario on two CPU cores with MovieLens 100K.
SEQUENTIAL = ("sasrec", {"epochs": 8, "embedding_size": 32, "max_length": 50, "early_stopping_patience": 3})
RATING = ("neural_mf", {"epochs": 10})
# The cheapest candidates' defaults only (popularity, item-kNN, EASE, iALS): a choice made within a minute or two.
AUTO = ("movies", {"max_trials": 4, "max_seconds": 600})
STUDY = ("action-thriller", ["ease", "item_knn"], 4)  # scenario, algorithms, trials
METRIC = "ndcg@10"


def demo_runs_queue(*, scenarios: Iterable[Scenario]) -> list[TrainingRun]:
    """Queue each scenario's own algorithm (a baseline), then its second model, then the ``auto`` run: baselines
    first so that every scenario has a live model within seconds; a scenario that already has runs gets none
    (re-running the demo adds nothing)."""
    fresh = [scenario for scenario in scenarios if not scenario.runs.exclude(status=RunStatus.FAILED).exists()]
    baselines = [training_run_create(scenario=scenario) for scenario in fresh]
    second = []
    for scenario in fresh:
        algorithm, params = RATING if scenario.objective == Objective.RATING else SEQUENTIAL
        second.append(training_run_create(scenario=scenario, algorithm=algorithm, params=params))
    slug, budget = AUTO
    auto = [training_run_create(scenario=s, algorithm="auto", params=budget) for s in fresh if s.slug == slug]
    return baselines + second + auto


def demo_study_start(*, scenarios: Iterable[Scenario]) -> Study | None:
    """Start the demo's small hyperparameter study on its scenario unless that scenario has one already."""
    slug, algorithms, trials = STUDY
    scenario = next((scenario for scenario in scenarios if scenario.slug == slug), None)
    if scenario is None or Study.objects.filter(scenario=scenario, auto_run__isnull=True).exists():
        return None
    return study_create(scenario=scenario, algorithms=algorithms, max_trials=trials)


def demo_best_promote(*, scenario: Scenario) -> Promotion | None:
    """Promote the scenario's succeeded run with the best NDCG@10 (the lowest RMSE where the scenario predicts
    ratings) unless it is live already; None when it is. An ``auto`` run is left out: its chosen run is a
    candidate itself."""
    metric, sign = ("rmse", -1.0) if scenario.objective == Objective.RATING else (METRIC, 1.0)
    succeeded = scenario.runs.filter(status=RunStatus.SUCCEEDED, chosen_run__isnull=True)
    runs = [run for run in succeeded if metric in run.metrics]
    if not runs:
        return None
    best = max(runs, key=lambda run: (sign * run.metrics[metric], -run.pk))
    if Scenario.objects.filter(pk=scenario.pk, live_run=best).exists():
        return None
    reason = f"demo: best {metric} ({best.metrics[metric]:.4f}) of the scenario's {len(runs)} succeeded runs"
    return training_run_promote(run=best, force=best.low_evidence, reason=reason)


def demo_matrix_queue(*, scenarios: Iterable[Scenario]) -> list[Scenario]:
    """Have the worker fill in the matrix of every group among ``scenarios``; the groups."""
    groups = [scenario for scenario in scenarios if scenario.members.exists()]
    for group in groups:
        group_matrix_queue(group=group)
    return groups
