"""Tuning pays: on ml-100k and ml-latest-small (every rating ≥ 3, random 8:1:1 split per user), the test NDCG@10
of a study's best trial against the best of the default models.

The default models (popularity, item-kNN, EASE, iALS and BPR with their declared defaults; ``--tuning-defaults``
names fewer, e.g. without BPR, whose default run takes up to 15 minutes on a busy 2-core machine) are runs of the
scenario; the best of them is the one with the highest *test* NDCG@10, the strongest baseline there is. The study
(``training.tuning``, Optuna's TPE over the declared ranges) tunes EASE, iALS and item-kNN under a wall-time budget
of ``--tuning-budget-minutes`` (15 by default), one trial at a time (2 cores); BPR is left out of the study, one of
its trials taking minutes there. Its trials execute in this process as a worker executes them, pruned at epoch
boundaries by the study's median rule. The study's best trial is chosen on *validation* (the leader, unless its
lead over the best defaults trial is within the noise of that many tuned trials: ``training/tuning/best.py``); its
test NDCG@10 over the best default's is the figure, the target ≥ 1.05 on both data sets (``tuned_over_default_min``).
Beside it, the leader's own test NDCG@10 and its lead on validation in standard errors against the noise bound.
Epochs saved by pruning are counted against each pruned trial's epoch budget.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.tuning_parts import add_algorithms_option
from benchmarks.tuning_parts.movielens_db import (
    DATA,
    movielens_database,
    ndcg_on_test,
    run_default,
    run_execute,
    scenario_add,
)

DATASETS = (("ml-100k", "ml_100k"), ("ml-latest-small", "ml_latest_small"))
DEFAULTS = ("popularity", "item_knn", "ease", "ials", "bpr")
STUDIED = ("ease", "ials", "item_knn")
TARGET = 1.05


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tuning-budget-minutes", type=float, default=15.0, help="Wall time of each study.")
    parser.add_argument("--tuning-data", type=Path, default=DATA, help="Folder holding ml-100k and ml-latest-small.")
    add_algorithms_option(parser, "--tuning-defaults", default=DEFAULTS, what="default models to beat")


def run(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for folder, key in DATASETS:
        with movielens_database(args.tuning_data / folder):
            figures |= _dataset(key, args.tuning_budget_minutes, args.tuning_defaults)
    ratios = [figures[f"{key}_tuned_over_default"] for _, key in DATASETS]
    return figures | {
        "tuning_budget_minutes": args.tuning_budget_minutes,
        "tuning_default_models": len(args.tuning_defaults),
        "tuned_over_default_min": min(ratios),
        "target_tuned_over_default_min": TARGET,
    }


def _dataset(key: str, budget_minutes: float, algorithms: tuple[str, ...]) -> dict[str, Any]:
    scenario = scenario_add(f"tuning-{key.replace('_', '-')}")
    print(f"{key}: default models", flush=True)
    defaults = {algorithm: run_default(scenario, algorithm) for algorithm in algorithms}
    best_default = max(defaults.values(), key=ndcg_on_test)
    study, seconds = _study_run(scenario, budget_minutes)
    return {
        **{f"{key}_default_{name}_test_ndcg_at_10": round(ndcg_on_test(run), 4) for name, run in defaults.items()},
        f"{key}_best_default_test_ndcg_at_10": round(ndcg_on_test(best_default), 4),
        **_study_figures(key, study, seconds, ndcg_on_test(best_default)),
    }


def _study_run(scenario, budget_minutes: float):
    """Create the study and execute its trials here until it ends; the study and its wall seconds."""
    from training.models import RunStatus, TrainingRun
    from training.tuning.studies import study_create

    started = time.perf_counter()
    study = study_create(
        scenario=scenario, algorithms=list(STUDIED), max_seconds=round(budget_minutes * 60), parallel_trials=1
    )
    while not study.is_finished:
        trial = TrainingRun.objects.filter(study=study, status=RunStatus.QUEUED).order_by("trial_number").first()
        if trial is None:
            raise RuntimeError(f"study {study.pk} is {study.status} with no queued trial")
        trial = run_execute(trial)
        print(f"  trial {trial.trial_number} {trial.algorithm} {trial.params}: {trial.status}", flush=True)
        study.refresh_from_db()
    return study, time.perf_counter() - started


def _study_figures(key: str, study, seconds: float, best_default: float) -> dict[str, Any]:
    from training.evaluation.compare import noise_bound
    from training.tuning.best import is_defaults_trial
    from training.tuning.selectors import study_summary, study_trials
    from training.tuning.studies import study_best_choice

    trials = study_trials(study=study)
    summary = study_summary(study=study, trials=trials)
    best, choice = study.best_run, study_best_choice(study=study, trials=trials)
    tuned = ndcg_on_test(best)
    print(f"{key}: best trial {best.trial_number} {best.algorithm} {best.params}: test ndcg@10 {tuned:.4f}", flush=True)
    print(f"{key}: {study.best_reason}", flush=True)
    lead = choice.lead
    tuned_succeeded = sum(run.status == "succeeded" and not is_defaults_trial(study, run) for run in trials)
    return {
        f"{key}_tuned_test_ndcg_at_10": round(tuned, 4),
        f"{key}_tuned_validation_ndcg_at_10": round(float(best.validation_metrics["ndcg@10"]), 4),
        f"{key}_tuned_is_defaults": int(is_defaults_trial(study, best)),
        f"{key}_leader_test_ndcg_at_10": round(ndcg_on_test(choice.leader), 4),
        f"{key}_leader_lead_standard_errors": round(lead.mean_difference / lead.standard_error, 3)
        if lead and lead.standard_error
        else None,
        f"{key}_noise_bound_standard_errors": round(noise_bound(tuned_succeeded), 3),
        f"{key}_tuned_over_default": round(tuned / best_default, 4),
        f"{key}_trials": summary["trials"],
        f"{key}_trials_succeeded": summary["counts"]["succeeded"],
        f"{key}_trials_pruned": summary["counts"]["pruned"],
        f"{key}_trials_stopped_by_budget": summary["counts"]["cancelled"],
        f"{key}_epochs_saved_by_pruning": summary["epochs_saved_by_pruning"],
        f"{key}_study_seconds": round(seconds, 1),
    }


def report_rows(figures: dict[str, Any]) -> Iterator[tuple[str, str, str, bool | None]]:
    if "tuned_over_default_min" not in figures:
        return
    target, budget = figures["target_tuned_over_default_min"], figures["tuning_budget_minutes"]
    for dataset, key in DATASETS:
        ratio, tuned, default = (
            figures[f"{key}_{name}"]
            for name in ("tuned_over_default", "tuned_test_ndcg_at_10", "best_default_test_ndcg_at_10")
        )
        what = f"{dataset}: study's best ÷ best default model, test NDCG@10 ({budget:g} min study)"
        yield what, f"{ratio:.3f}× ({tuned:.4f} vs {default:.4f})", f"≥ {target:g}×", ratio >= target
        trials, pruned, saved = (
            figures[f"{key}_{name}"] for name in ("trials", "trials_pruned", "epochs_saved_by_pruning")
        )
        what = f"{dataset}: trials run, pruned, epochs saved by pruning"
        yield what, f"{trials}, {pruned}, {saved}", "", None
