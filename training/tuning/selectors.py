"""Reads of studies for pages and the API."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from training.algorithms.auto import Auto
from training.models import RunStatus, Study, TrainingRun
from training.tuning.choice import auto_selection
from training.tuning.pruning import optuna_study


def study_trials(*, study: Study) -> list[TrainingRun]:
    return list(study.trials.order_by("trial_number"))


def study_finished_optuna(*, study: Study, trials: list[TrainingRun]) -> optuna.Study:
    """The study as Optuna sees it, its finished trials only (what its figures draw)."""
    return optuna_study(study, [run for run in trials if run.is_finished])


def study_summary(*, study: Study, trials: list[TrainingRun]) -> dict[str, Any]:
    """Counts of trials by outcome and the epochs pruned trials did not run (against their epoch budget)."""
    counts = {status: sum(run.status == status for run in trials) for status in RunStatus.values}
    saved = sum(
        max(int(run.params.get("epochs", run.params.get("iterations", 0)) or 0) - len(run.history), 0)
        for run in trials
        if run.status == RunStatus.PRUNED
    )
    return {"trials": len(trials), "counts": counts, "epochs_saved_by_pruning": saved}


def study_has_figures(rebuilt: optuna.Study) -> bool:
    return any(trial.state == TrialState.COMPLETE for trial in rebuilt.trials)


def auto_run_selection(*, run: TrainingRun) -> dict[str, Any] | None:
    """What an auto run tried and why it chose, as recorded when it ended, or as it stands while it searches;
    None for any other run."""
    if run.algorithm != Auto.name:
        return None
    study = Study.objects.filter(auto_run=run).first()
    if run.is_finished or study is None:
        return run.selection
    return {**run.selection, **auto_selection(study, study_trials(study=study))}
