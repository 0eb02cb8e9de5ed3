"""The demo's runs: a baseline and a sequential model for every demo scenario, trained on the worker, and the
best of each scenario promoted as the runs finish (so the pages and the API work while the rest trains)."""

from __future__ import annotations

from collections.abc import Iterable

from scenarios.models import Scenario
from training.matrix import group_matrix_queue
from training.models import Promotion, RunStatus, TrainingRun
from training.services import training_run_create, training_run_promote

# Small enough to finish in about a minute per scenario on two CPU cores with MovieLens 100K.
SEQUENTIAL = ("sasrec", {"epochs": 8, "embedding_size": 32, "max_length": 50, "early_stopping_patience": 3})
METRIC = "ndcg@10"


def demo_runs_queue(*, scenarios: Iterable[Scenario]) -> list[TrainingRun]:
    """Queue each scenario's own algorithm (a baseline) and then a small SASRec, baselines first so that every
    scenario has a live model within seconds; a scenario that already has runs gets none (re-running the demo
    adds nothing)."""
    fresh = [scenario for scenario in scenarios if not scenario.runs.exclude(status=RunStatus.FAILED).exists()]
    baselines = [training_run_create(scenario=scenario) for scenario in fresh]
    algorithm, params = SEQUENTIAL
    sequential = [training_run_create(scenario=scenario, algorithm=algorithm, params=params) for scenario in fresh]
    return baselines + sequential


def demo_best_promote(*, scenario: Scenario) -> Promotion | None:
    """Promote the scenario's succeeded run with the best NDCG@10 unless it is live already; None when it is."""
    runs = [run for run in scenario.runs.filter(status=RunStatus.SUCCEEDED) if METRIC in run.metrics]
    if not runs:
        return None
    best = max(runs, key=lambda run: (run.metrics[METRIC], -run.pk))
    if Scenario.objects.filter(pk=scenario.pk, live_run=best).exists():
        return None
    reason = f"demo: best {METRIC} ({best.metrics[METRIC]:.4f}) of the scenario's {len(runs)} succeeded runs"
    return training_run_promote(run=best, force=best.low_evidence, reason=reason)


def demo_matrix_queue(*, scenarios: Iterable[Scenario]) -> list[Scenario]:
    """Have the worker fill in the matrix of every group among ``scenarios``; the groups."""
    groups = [scenario for scenario in scenarios if scenario.members.exists()]
    for group in groups:
        group_matrix_queue(group=group)
    return groups
