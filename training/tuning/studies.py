"""Studies: start one, advance it as its trials finish, cancel it, promote its best trial.

A study keeps ``parallel_trials`` trials queued or running: each finished trial (``study_trial_finished``, called
by the worker) lets the sampler propose the next ones, until the trial or wall-time budget is spent; then the
study ends with its best trial on the objective. The first trial of each algorithm runs its defaults, so the
study's best is never a step back from them on validation, and a tuned trial replaces them only by a lead larger
than validation's noise (:mod:`training.tuning.best`). With ``tune_top``, the study then tunes only the best
algorithms on those defaults (an ``auto`` run's search); a study an auto run owns ends that run with it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from recsys_site.celery import app
from recsys_site.errors import Conflict, DomainError, ValidationFailed, error_text
from scenarios.models import Objective, Scenario
from training.algorithms.registry import (
    HyperparameterError,
    UnknownAlgorithm,
    algorithm_params_validate,
    get_algorithm,
)
from training.evaluation.objectives import objective_default, objective_problem
from training.models import FINISHED, Promotion, RunStatus, Study, StudyStatus, TrainingRun
from training.services import training_run_cancel, training_run_create, training_run_promote
from training.tuning.best import BestChoice, best_choice
from training.tuning.choice import auto_run_conclude, auto_run_progress, defaults_pending, tuned_algorithms
from training.tuning.pruning import optuna_study
from training.tuning.selectors import study_algorithm_unfit
from training.tuning.space import SpaceError, space_clean, suggest

logger = logging.getLogger(__name__)

MAX_PARALLEL_TRIALS = 64
# A trial's own wall-time cap, as a share of its study's: no one candidate spends the whole budget (BPR on its
# defaults can take most of 15 minutes on a large slice); a trial past it keeps its best epoch so far.
TRIAL_SHARE = 0.25
IN_FLIGHT = (RunStatus.QUEUED, RunStatus.RUNNING)


def study_create(  # noqa: PLR0913 - one argument per field an analyst sets on a study
    *,
    scenario: Scenario,
    algorithms: list[str],
    search_space: Mapping[str, Any] | None = None,
    fixed_params: Mapping[str, Any] | None = None,
    objective: str | None = None,
    max_trials: int | None = None,
    max_seconds: int | None = None,
    parallel_trials: int | None = None,
    created_by: Any = None,
    tune_top: int | None = None,
    auto_run: TrainingRun | None = None,
) -> Study:
    """Validate the study, store it and queue its first trials (sent to the workers once committed).

    ``objective`` defaults to the scenario's own: validation RMSE under the rating objective, else NDCG@10.
    """
    errors: dict[str, list[str]] = {}
    ratings = scenario.objective == Objective.RATING
    objective = objective or objective_default(ratings=ratings)
    group = scenario.members.exists()
    spaces = _clean_spaces(algorithms, search_space or {}, errors, ratings=ratings, group=group)
    fixed = _clean_fixed(algorithms, fixed_params or {}, errors)
    problem = objective_problem(objective, ratings=ratings)
    if problem:
        errors["objective"] = [problem]
    if max_trials is None and max_seconds is None:
        errors["budget"] = ["give max_trials, max_seconds or both"]
    if scenario.validation_share <= 0:
        errors["scenario"] = [f"{scenario.slug} holds out no validation part: trials are judged on validation"]
    if errors:
        raise ValidationFailed("invalid study", detail=errors)
    with transaction.atomic():
        study = Study.objects.create(
            scenario=scenario,
            algorithms=algorithms,
            search_space=spaces,
            fixed_params=fixed,
            objective=objective,
            max_trials=max_trials,
            max_seconds=max_seconds,
            trial_max_seconds=trial_seconds(max_seconds),
            parallel_trials=parallel_trials or worker_processes(),
            seed=scenario.seed,
            created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
            tune_top=tune_top,
            auto_run=auto_run,
        )
        study_advance(study_id=study.pk)
    study.refresh_from_db()
    return study


def _clean_spaces(
    algorithms: list[str], overrides: Mapping[str, Any], errors: dict[str, list[str]], *, ratings: bool, group: bool
) -> dict:
    if not algorithms:
        errors["algorithms"] = ["name at least one algorithm"]
        return {}
    if len(set(algorithms)) != len(algorithms):
        errors["algorithms"] = ["each algorithm once"]
    spaces: dict[str, Any] = {}
    for algorithm in algorithms:
        try:
            unfit = study_algorithm_unfit(get_algorithm(algorithm), ratings=ratings, group=group)
            if unfit:
                errors.setdefault("algorithms", []).append(f"{algorithm} {unfit}")
                continue
            spaces[algorithm] = space_clean(algorithm, overrides.get(algorithm))
        except UnknownAlgorithm as error:
            errors.setdefault("algorithms", []).append(str(error))
        except SpaceError as error:
            for name, message in error.errors.items():
                errors.setdefault(f"search_space.{name}", []).append(message)
    for name in set(overrides) - set(algorithms):
        errors.setdefault("search_space", []).append(f"{name} is not among the study's algorithms")
    return spaces


def _clean_fixed(algorithms: list[str], fixed: Mapping[str, Any], errors: dict[str, list[str]]) -> dict:
    """Values every trial of an algorithm takes (searched parameters aside), checked against its declarations."""
    cleaned = {}
    for name in set(fixed) - set(algorithms):
        errors.setdefault("fixed_params", []).append(f"{name} is not among the study's algorithms")
    for algorithm in algorithms:
        params = fixed.get(algorithm) or {}
        if not isinstance(params, Mapping):
            errors[f"fixed_params.{algorithm}"] = ["must be an object of hyperparameters"]
            continue
        try:
            validated = algorithm_params_validate(name=algorithm, params=params)
        except HyperparameterError as error:
            for param, message in error.errors.items():
                errors[f"fixed_params.{algorithm}.{param}"] = [message]
        except UnknownAlgorithm:
            continue  # reported under algorithms
        else:
            cleaned[algorithm] = {name: validated[name] for name in params}
    return cleaned


def trial_seconds(max_seconds: int | None) -> int | None:
    """The wall-time cap of each trial of a study with a wall-time budget of ``max_seconds`` (None: no cap)."""
    return max(1, round(max_seconds * TRIAL_SHARE)) if max_seconds else None


def worker_processes() -> int:
    """Pool processes of the workers that answer now (trials run in parallel on all of them); 1 if none answer."""
    try:
        stats = app.control.inspect(timeout=1.0).stats() or {}
    except Exception:  # a broker that cannot be reached: one trial at a time, queued until a worker comes
        logger.warning("no worker statistics: the study runs one trial at a time")
        return 1
    total = sum(int(entry.get("pool", {}).get("max-concurrency", 1)) for entry in stats.values())
    return max(1, min(total, MAX_PARALLEL_TRIALS))


def study_advance(*, study_id: int) -> Study:
    """Queue new trials while the budget allows, or end the study when nothing is left to run."""
    with transaction.atomic():
        study = Study.objects.select_for_update().select_related("scenario").get(pk=study_id)
        if study.status != StudyStatus.RUNNING:
            return study
        trials = list(study.trials.order_by("trial_number"))
        in_flight = sum(run.status in IN_FLIGHT for run in trials)
        to_start = min(study.parallel_trials - in_flight, _trials_left(study, trials))
        try:
            for _ in range(max(to_start, 0)):
                trials.append(_trial_start(study, trials))
        except DomainError as error:  # the scenario changed under the study (e.g. its slice shrank)
            Study.objects.filter(pk=study.pk).update(error=f"no further trial could start: {error_text(error)}")
            study.max_trials = len(trials)
            Study.objects.filter(pk=study.pk).update(max_trials=len(trials))
        if not any(run.status in IN_FLIGHT for run in trials):
            _study_end(study, trials)
        else:
            _record_best(study, trials)
            if study.auto_run_id is not None:
                auto_run_progress(study, trials)
    if study.auto_run_id is not None and study.is_finished:
        auto_run_conclude(study=study)
    return study


def _trials_left(study: Study, trials: list[TrainingRun]) -> int:
    started = len(trials)
    if study.max_seconds and (timezone.now() - study.created_at).total_seconds() >= study.max_seconds:
        return 0
    left = MAX_PARALLEL_TRIALS * 1000 if study.max_trials is None else study.max_trials - started
    if defaults_pending(study, trials):  # the best on defaults are not known yet: only defaults may start
        return min(left, len(study.algorithms) - started)
    if started >= len(study.algorithms) and not tuned_algorithms(study, trials):
        return 0  # nothing worth tuning succeeded on its defaults
    return left


def _trial_start(study: Study, trials: list[TrainingRun]) -> TrainingRun:
    number = len(trials)
    if number < len(study.algorithms):  # each algorithm's defaults first
        algorithm, params = study.algorithms[number], dict[str, Any]()
    else:
        searched = tuned_algorithms(study, trials)
        history = [run for run in trials if run.algorithm in searched]
        trial = optuna_study(study, history, algorithms=searched, seed_offset=number).ask()
        algorithm, params = suggest(trial, searched, study.search_space)
    return training_run_create(
        scenario=study.scenario,
        algorithm=algorithm,
        params={**study.fixed_params.get(algorithm, {}), **params},
        created_by=study.created_by,
        trial=(study, number),
    )


def _record_best(study: Study, trials: list[TrainingRun]) -> TrainingRun | None:
    choice = study_best_choice(study=study, trials=trials)
    if choice is None:
        return None
    if choice.run.pk != study.best_run_id or choice.reason != study.best_reason:
        Study.objects.filter(pk=study.pk).update(best_run=choice.run, best_reason=choice.reason)
    return choice.run


def _study_end(study: Study, trials: list[TrainingRun]) -> None:
    best = _record_best(study, trials)
    status, error = StudyStatus.SUCCEEDED, ""
    if best is None:
        status, error = StudyStatus.FAILED, "no trial succeeded: see the trials' errors"
    Study.objects.filter(pk=study.pk, status=StudyStatus.RUNNING).update(
        status=status, error=error, finished_at=timezone.now()
    )
    study.status = status


def study_best_choice(*, study: Study, trials: list[TrainingRun] | None = None) -> BestChoice | None:
    """The study's best trial and why (:mod:`training.tuning.best`); None while no trial has succeeded."""
    return best_choice(study, trials if trials is not None else list(study.trials.all()))


def study_best_trial(*, study: Study, trials: list[TrainingRun] | None = None) -> TrainingRun | None:
    """The succeeded trial best on validation, unless it is a tuned trial whose lead over the defaults is within
    noise (:mod:`training.tuning.best`): then the best defaults trial."""
    choice = study_best_choice(study=study, trials=trials)
    return choice.run if choice is not None else None


def study_trial_finished(*, run_id: int) -> None:
    """Called when a run leaves the worker: advance its study, if it is a trial."""
    study_id = TrainingRun.objects.filter(pk=run_id).values_list("study_id", flat=True).first()
    if study_id is not None:
        study_advance(study_id=study_id)


def study_cancel(*, study: Study) -> Study:
    """End the study now: its queued trials are cancelled at once, its running ones at their next epoch."""
    if not Study.objects.filter(pk=study.pk, status=StudyStatus.RUNNING).update(
        status=StudyStatus.CANCELLED, finished_at=timezone.now(), error="cancelled by request"
    ):
        study.refresh_from_db()
        raise Conflict(f"study {study.pk} is already {study.status}")
    for run in study.trials.filter(status__in=IN_FLIGHT):
        if run.status not in FINISHED:
            with contextlib.suppress(Conflict):  # it finished meanwhile
                training_run_cancel(run=run)
    study.refresh_from_db()
    _record_best(study, list(study.trials.all()))
    study.refresh_from_db()
    auto_run_conclude(study=study)
    return study


def study_promote_best(*, study: Study, actor: Any = None, force: bool = False, reason: str = "") -> Promotion:
    """Make the study's best trial the scenario's live model; ``reason`` is kept in the serving history."""
    best = study_best_trial(study=study)
    if best is None:
        raise Conflict(f"study {study.pk} has no succeeded trial to promote")
    return training_run_promote(run=best, actor=actor, force=force, reason=reason)
