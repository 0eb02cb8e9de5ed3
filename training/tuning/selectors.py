"""Reads of studies for pages and the API."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from scenarios.models import Objective, Scenario
from training.algorithms.auto import Auto
from training.algorithms.base import Recommender
from training.algorithms.registry import algorithm_fits_objective, algorithm_names, get_algorithm
from training.models import RunStatus, Study, TrainingRun
from training.tuning.choice import auto_selection
from training.tuning.pruning import optuna_study


def study_algorithm_unfit(algorithm: type[Recommender], *, ratings: bool, group: bool) -> str | None:
    """Why a study of a scenario cannot tune ``algorithm`` (None when it can): ``ratings`` when the scenario's
    objective is rating, ``group`` when it is a scenario group."""
    if algorithm.needs_teacher or getattr(algorithm, "study_excluded", False):
        return "cannot be tuned by a study"
    if algorithm.family == "multi_scenario" and not group:
        return "is fitted on a scenario group's members: start the study on the group"
    if not algorithm_fits_objective(algorithm.name, ratings=ratings):
        if ratings:
            return "does not predict ratings, and the scenario's objective is rating"
        return "predicts ratings, and the scenario's objective is ranking"
    return None


def study_algorithm_choices(*, scenario: Scenario) -> list[tuple[str, str]]:
    """What a study of ``scenario`` can search, as (name, label): the algorithms it can tune that declare a range."""
    ratings, group = scenario.objective == Objective.RATING, scenario.members.exists()
    algorithms = [get_algorithm(name) for name in algorithm_names()]
    return [
        (algorithm.name, algorithm.label)
        for algorithm in algorithms
        if study_algorithm_unfit(algorithm, ratings=ratings, group=group) is None
        and any(param.search is not None for param in algorithm.params)
    ]


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
