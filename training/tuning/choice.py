"""What an ``auto`` run tried and why it chose its winner, and ending the run when its study ends.

The candidates are the trials of the study the auto run owns: first each applicable algorithm with its defaults,
then the tuned trials of the best ``tune_top`` of them; the study's best trial on its objective (the highest ranking
metric, or the lowest rating error; a tuned trial only by more than validation's noise, :mod:`training.tuning.best`)
wins. A candidate stopped by the budget keeps its best epoch so far and
competes with it. :func:`auto_selection` describes them (also while the study
runs, for the run page); :func:`auto_run_conclude` stores that record on the run and ends it like its study.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from training.evaluation.objectives import objective_lower_is_better, objective_ordering
from training.models import RunStatus, Study, StudyStatus, TrainingRun
from training.tuning.best import BestChoice, best_choice, is_defaults_trial

DEFAULTS, TUNED = "defaults", "tuned"


def tuned_algorithms(study: Study, trials: Sequence[TrainingRun]) -> list[str]:
    """The algorithms a study tunes: all of them, or with ``tune_top`` the best on their defaults trials among those
    with a range to search (a handful of choices is covered by ``auto``'s defaults and neighbours already)."""
    if not study.tune_top:
        return list(study.algorithms)
    scored = [
        (run.validation_metrics[study.objective], run.algorithm)
        for run in trials
        if _stage(study, run) == DEFAULTS
        and run.status == RunStatus.SUCCEEDED
        and study.objective in run.validation_metrics
        and _has_range(study.search_space.get(run.algorithm, {}))
    ]
    ranked = sorted(scored, key=lambda pair: objective_ordering(study.objective, pair[0]))
    return [algorithm for _, algorithm in ranked[: study.tune_top]]


def defaults_pending(study: Study, trials: Sequence[TrainingRun]) -> bool:
    """Whether a study that tunes its best algorithms still waits for a defaults trial (to know which are best)."""
    if not study.tune_top:
        return False
    started = [run for run in trials if _stage(study, run) == DEFAULTS]
    return len(started) < len(study.algorithms) or any(not run.is_finished for run in started)


def _has_range(space: dict[str, Any]) -> bool:
    return any("choices" not in spec for spec in space.values())


def _stage(study: Study, run: TrainingRun) -> str:
    return DEFAULTS if is_defaults_trial(study, run) else TUNED


def auto_selection(study: Study, trials: Sequence[TrainingRun]) -> dict[str, Any]:
    """Every candidate with its stage, status and validation objective (best first), the winner and why."""
    candidates = sorted((_candidate(study, run) for run in trials), key=lambda row: _rank(study, row))
    tuned = [] if defaults_pending(study, trials) else tuned_algorithms(study, trials)
    choice = best_choice(study, trials)
    best = next((row for row in candidates if choice is not None and row["run"] == choice.run.pk), None)
    return {
        "objective": study.objective,
        "candidates": candidates,
        "tuned": tuned,
        "winner": best["run"] if best else None,
        "reason": _reason(study, candidates, best, tuned, choice),
        "budget": {
            "max_seconds": study.max_seconds,
            "max_trials": study.max_trials,
            "trial_max_seconds": study.trial_max_seconds,
            "seconds_used": round(((study.finished_at or timezone.now()) - study.created_at).total_seconds(), 1),
            "trials_used": len(candidates),
        },
    }


def _candidate(study: Study, run: TrainingRun) -> dict[str, Any]:
    value = run.validation_metrics.get(study.objective) if run.status == RunStatus.SUCCEEDED else None
    searched = study.search_space.get(run.algorithm, {})
    return {
        "run": run.pk,
        "trial": run.trial_number,
        "algorithm": run.algorithm,
        "stage": _stage(study, run),
        "status": run.status,
        "objective": value,
        "params": {name: run.params[name] for name in searched if name in run.params},
        "error": run.error[:200],
        "budget_stop": run.budget_stop,
    }


def _rank(study: Study, row: dict[str, Any]) -> tuple:
    value = row["objective"]
    return (value is None, objective_ordering(study.objective, value or 0.0), row["trial"] or 0)


def _reason(
    study: Study, candidates: list[dict], best: dict | None, tuned: list[str], choice: BestChoice | None
) -> str:
    scored = [row for row in candidates if row["objective"] is not None]
    if best is None or choice is None:
        return "no candidate has succeeded yet" if study.status == StudyStatus.RUNNING else "no candidate succeeded"
    algorithms = sorted({row["algorithm"] for row in candidates})
    text = f"{best['algorithm']} (run {best['run']}, {_described(best)}) "
    if choice.run.pk == choice.leader.pk:
        text += f"has the best validation {study.objective}, {best['objective']:.4f}"
    else:
        text += f"is chosen with validation {study.objective} {best['objective']:.4f}: {choice.reason}"
    rival = next((row for row in scored if row["algorithm"] != best["algorithm"]), None)
    if rival is not None:
        text += f", {_margin(study, best['objective'], rival['objective'])} the best other algorithm, "
        text += f"{rival['algorithm']} ({rival['objective']:.4f})"
    text += f"; {len(candidates)} runs of {len(algorithms)} algorithms ({', '.join(algorithms)})"
    if tuned:
        text += f"; tuned: {', '.join(tuned)} (the best {study.tune_top} on their defaults)"
    succeeded = {row["algorithm"] for row in scored}
    unscored = [algorithm for algorithm in study.algorithms if algorithm not in succeeded]
    if unscored and study.is_finished:
        text += f"; no run succeeded within the budget: {', '.join(unscored)}"
    return text


def _margin(study: Study, best: float, rival: float) -> str:
    """How far ``best`` beats ``rival``: a higher metric in per cent over it, an error in per cent below it."""
    if objective_lower_is_better(study.objective):
        return f"{1 - best / rival:.1%} below" if rival else "as good as"
    return f"{best / rival - 1:+.1%} over" if rival else "+inf% over"


def _described(row: dict[str, Any]) -> str:
    described = "defaults"
    if row["stage"] == TUNED:
        described = "tuned: " + ", ".join(f"{name}={_short(value)}" for name, value in sorted(row["params"].items()))
    return described + (", stopped by the budget at its best epoch so far" if row["budget_stop"] else "")


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def auto_run_progress(study: Study, trials: Sequence[TrainingRun]) -> None:
    """The auto run's progress: the larger share of its wall-time or trial budget used."""
    shares = [sum(run.is_finished for run in trials) / study.max_trials] if study.max_trials else []
    if study.max_seconds:
        shares.append((timezone.now() - study.created_at).total_seconds() / study.max_seconds)
    progress = min(max(shares, default=0.0), 0.99)
    TrainingRun.objects.filter(auto_study=study, status=RunStatus.RUNNING).update(progress=progress)


def auto_run_conclude(*, study: Study) -> None:
    """End the study's auto run as its study ended: succeeded with the best candidate, cancelled, or failed."""
    if study.auto_run_id is None:
        return
    study.refresh_from_db()
    trials = list(study.trials.order_by("trial_number"))
    run = TrainingRun.objects.get(auto_study=study)
    selection = {**run.selection, **auto_selection(study, trials)}
    fields: dict[str, Any] = {"selection": selection, "finished_at": timezone.now()}
    winner = next((trial for trial in trials if trial.pk == selection["winner"]), None)
    if study.status == StudyStatus.CANCELLED:
        fields |= {"status": RunStatus.CANCELLED, "error": "cancelled by request"}
    elif winner is None:
        fields |= {"status": RunStatus.FAILED, "error": "no candidate succeeded: see the candidates' errors"}
    else:
        fields |= {
            "status": RunStatus.SUCCEEDED,
            "chosen_run": winner,
            "metrics": winner.metrics,
            "validation_metrics": winner.validation_metrics,
            "progress": 1.0,
        }
    fields["phase"] = fields["status"]
    TrainingRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(**fields)
