"""Optuna over the project's runs: a study's trials rebuilt from its child runs, for the sampler (what to try
next) and the pruner (whether a running trial falls behind), and the check a trial makes after each epoch.

Trials are pruned on their per-epoch validation NDCG@10 (the curve every iterative model reports; RMSE when the
study minimises a rating error), against the finished trials of the same algorithm at the same epoch: Optuna's
median rule, from the third epoch on. A trial past its study's wall-time budget or its own cap stops at the epoch
boundary and keeps its best epoch so far (:class:`BudgetSpent`).
"""

from __future__ import annotations

from collections.abc import Iterable

import optuna
from django.utils import timezone
from optuna.trial import FrozenTrial, TrialState

from training.algorithms.base import BudgetSpent, EarlyStopping, TrainingCancelled
from training.evaluation.objectives import objective_direction, objective_lower_is_better
from training.models import RunStatus, Study, StudyStatus, TrainingRun
from training.tuning.space import trial_params

optuna.logging.set_verbosity(optuna.logging.WARNING)

PRUNE_FROM_EPOCH = 3
CURVE_METRIC = EarlyStopping.metric  # "ndcg@10", the curve every iterative model reports per epoch
RATING_CURVE = "rmse"  # the curve the rating models report per epoch

_STATES = {
    RunStatus.SUCCEEDED: TrialState.COMPLETE,
    RunStatus.PRUNED: TrialState.PRUNED,
    RunStatus.FAILED: TrialState.FAIL,
    RunStatus.CANCELLED: TrialState.FAIL,
    RunStatus.QUEUED: TrialState.RUNNING,
    RunStatus.RUNNING: TrialState.RUNNING,
}


class TrialPruned(TrainingCancelled):
    """A trial stopped by the study's pruner; the message says at which epoch and against what."""


class TrialStopped(TrainingCancelled):
    """A trial stopped because its study ended (cancelled)."""


def pruner() -> optuna.pruners.BasePruner:
    return optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=PRUNE_FROM_EPOCH)


def curve_metric(objective: str) -> str:
    """The per-epoch figure a study's trials are pruned on: validation RMSE for a rating error (what the rating
    models report each epoch), else NDCG@10 (what every iterative model reports)."""
    return RATING_CURVE if objective_lower_is_better(objective) else CURVE_METRIC


def curve(history: Iterable[dict], metric: str = CURVE_METRIC) -> dict[int, float]:
    """The validation curve of a run's history: ``{epoch (1-based, in order of report): metric}``."""
    values = [entry[metric] for entry in history if metric in entry]
    return {step: float(value) for step, value in enumerate(values, start=1)}


def objective_value(run: TrainingRun, objective: str) -> float | None:
    value = run.validation_metrics.get(objective)
    return float(value) if value is not None else None


def frozen_trial(study: Study, run: TrainingRun, algorithms: list[str] | None = None) -> FrozenTrial:
    """One run as an Optuna trial: its searched parameters, state, objective value and validation curve, in the
    space of ``algorithms`` (by default the study's)."""
    params, distributions = trial_params(run.algorithm, run.params, algorithms or study.algorithms, study.search_space)
    state = _STATES[RunStatus(run.status)]
    value = objective_value(run, study.objective) if state == TrialState.COMPLETE else None
    if state == TrialState.COMPLETE and value is None:
        state = TrialState.FAIL
    trial = optuna.trial.create_trial(
        state=state,
        value=value,
        params=params,
        distributions=distributions,
        intermediate_values=curve(run.history, curve_metric(study.objective)),
    )
    trial.number = run.trial_number or 0
    return trial


def optuna_study(
    study: Study, runs: Iterable[TrainingRun], *, algorithms: list[str] | None = None, seed_offset: int | None = None
) -> optuna.Study:
    """An in-memory Optuna study holding ``runs`` as its trials over ``algorithms`` (by default the study's);
    sampler seeded by the study and ``seed_offset`` (by default the number of runs)."""
    runs = list(runs)
    rebuilt = optuna.create_study(
        direction=objective_direction(study.objective),
        sampler=optuna.samplers.TPESampler(seed=study.seed + (len(runs) if seed_offset is None else seed_offset)),
        pruner=pruner(),
    )
    rebuilt.add_trials([frozen_trial(study, run, algorithms) for run in runs])
    return rebuilt


def trial_check(*, run_id: int, history: list[dict], last: bool = False) -> None:
    """After an epoch of a study's trial: raise :class:`TrialStopped` when the study ended, :class:`BudgetSpent`
    when the study's wall-time budget or the trial's own cap ran out (unless it was the ``last`` epoch: the trial
    ends anyway), :class:`TrialPruned` when its validation curve falls behind the finished trials of its
    algorithm."""
    run = TrainingRun.objects.select_related("study").filter(pk=run_id, study__isnull=False).first()
    if run is None or run.study is None:
        return
    study = run.study
    if study.status != StudyStatus.RUNNING:
        raise TrialStopped(f"the study ended ({study.status})")
    spent = None if last else budget_spent(study, run)
    if spent:
        raise BudgetSpent(spent)
    metric = curve_metric(study.objective)
    values = curve(history, metric)
    if len(values) < PRUNE_FROM_EPOCH:
        return
    finished = TrainingRun.objects.filter(study=study, algorithm=run.algorithm, status=RunStatus.SUCCEEDED)
    rebuilt = optuna_study(study, finished)
    current = optuna.trial.create_trial(state=TrialState.RUNNING, intermediate_values=values)
    if pruner().prune(rebuilt, current):
        step = max(values)
        raise TrialPruned(
            f"pruned at epoch {step}: validation {metric} {values[step]:.4f} is worse than the median of the "
            f"finished {run.algorithm} trials at that epoch"
        )


def budget_spent(study: Study, run: TrainingRun) -> str | None:
    """Why the trial ``run`` has no time left (None while it has): the study's budget or its own cap ran out."""
    now = timezone.now()
    if study.max_seconds and (now - study.created_at).total_seconds() > study.max_seconds:
        return f"the study's wall-time budget of {study.max_seconds} s ran out"
    started = run.started_at or run.created_at
    if study.trial_max_seconds and (now - started).total_seconds() > study.trial_max_seconds:
        return f"its wall-time cap of {study.trial_max_seconds} s (a share of the study's budget) ran out"
    return None
