"""Runs compared with a baseline the analyst picks: intervals for every run, paired tests only where they hold.

A paired test needs the two runs tested on the same (user, item) pairs, which their recorded splits say
(``training.splits.same_test_set``: equal test digests). Runs tested on other pairs are shown with their own
intervals only, and the comparison says why they are not paired.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from training.evaluation.compare import Interval, PairedTest, align, bootstrap_interval, paired_test
from training.models import RunEvaluation, TrainingRun
from training.splits import same_test_set, split_changes, split_label

METRIC_FAMILIES = ("precision", "recall", "ndcg", "map", "mrr", "hit", "coverage", "average_popularity")
PRIMARY_K = 10
METRIC_NAME = re.compile(r"^([a-z_]+)@(\d+)$")


def metrics_ordered(names: Iterable[str]) -> list[str]:
    """``family@k`` names, K = 10 first (what the pages compare on), then by K; each K in the usual order."""

    def order(name: str) -> tuple[bool, int, int]:
        family, k = METRIC_NAME.match(name).groups()  # type: ignore[union-attr]  # filtered below
        rank = METRIC_FAMILIES.index(family) if family in METRIC_FAMILIES else len(METRIC_FAMILIES)
        return (int(k) != PRIMARY_K, int(k), rank)

    return sorted({name for name in names if METRIC_NAME.match(name)}, key=order)


@dataclass(frozen=True)
class Difference:
    """One setting that is not the same for every compared run: its name and each run's value (``None``: unset)."""

    name: str
    values: list[Any]


@dataclass(frozen=True)
class RunComparison:
    """Runs side by side, the baseline first: per metric, each run's mean with a 95% interval, and each other
    run's paired test against the baseline (``None`` where the runs were tested on other pairs, see ``unpaired``)."""

    runs: list[TrainingRun]
    baseline_reason: str
    metrics: list[str]
    intervals: dict[str, list[Interval]]  # metric → one per run
    tests: dict[str, list[PairedTest | None]]  # metric → run i vs the baseline (None for the baseline itself)
    unpaired: dict[int, str]  # run id → why it is not paired with the baseline
    differences: list[Difference]
    ndcg_differences: list[float]  # per user, the first paired run minus the baseline

    @property
    def baseline(self) -> TrainingRun:
        return self.runs[0]

    @property
    def paired_run(self) -> TrainingRun | None:
        """The run whose per-user differences from the baseline are shown (the first one paired with it)."""
        return next((run for run in self.runs[1:] if run.pk not in self.unpaired), None)


def runs_compare(
    *, runs: list[TrainingRun], baseline: TrainingRun | None = None, live_run_id: int | None = None
) -> RunComparison:
    """Compare ``runs`` (those with per-user vectors) with ``baseline``: by default the live run when it is among
    them, else the oldest. Every metric at every K that all of them have."""
    evaluations = {evaluation.run_id: evaluation for evaluation in RunEvaluation.objects.filter(run__in=runs)}
    usable = [run for run in runs if run.pk in evaluations]
    chosen, reason = _baseline(usable, baseline, live_run_id)
    if chosen is None:
        return RunComparison([], reason, [], {}, {}, {}, [], [])
    ordered = [chosen, *[run for run in usable if run.pk != chosen.pk]]
    shared = set.intersection(*[set(evaluations[run.pk].vectors) for run in ordered])
    metrics = metrics_ordered(shared)
    unpaired = {run.pk: why for run in ordered[1:] if (why := unpaired_reason(chosen, run))}
    intervals: dict[str, list[Interval]] = {}
    tests: dict[str, list[PairedTest | None]] = {}
    for metric in metrics:
        intervals[metric] = [bootstrap_interval(evaluations[run.pk].vectors[metric]) for run in ordered]
        tests[metric] = [
            None
            if run is chosen or run.pk in unpaired
            else _paired(evaluations[chosen.pk], evaluations[run.pk], metric)
            for run in ordered
        ]
    partner = next((run for run in ordered[1:] if run.pk not in unpaired), None)
    differences: list[float] = []
    if partner is not None and "ndcg@10" in metrics:
        base, other = evaluations[chosen.pk], evaluations[partner.pk]
        a, b = align(base.user_ids, base.vectors["ndcg@10"], other.user_ids, other.vectors["ndcg@10"])
        differences = (b - a).tolist()
    return RunComparison(ordered, reason, metrics, intervals, tests, unpaired, run_differences(ordered), differences)


def unpaired_reason(baseline: TrainingRun | None, run: TrainingRun) -> str:
    """Why ``run`` cannot be paired with ``baseline`` (empty when it can): they were tested on other pairs."""
    if baseline is None or same_test_set(baseline.split, run.split):
        return ""
    if not baseline.split.get("test_digest") or not run.split.get("test_digest"):
        return f"run {run.pk} or run {baseline.pk} recorded no split: their test pairs cannot be shown to be the same"
    changes = split_changes(baseline.split, run.split) or ["other test pairs from the same settings"]
    return (
        f"run {run.pk} was tested on other pairs than run {baseline.pk} ({'; '.join(changes)}): "
        f"{split_label(run.split)} against {split_label(baseline.split)}"
    )


def run_differences(runs: list[TrainingRun]) -> list[Difference]:
    """What is not the same for every run: algorithm, each hyperparameter, seed, split, data and parent."""
    rows = [
        Difference("algorithm", [run.algorithm for run in runs]),
        *[
            Difference(name, [run.params.get(name) for run in runs])
            for name in sorted({name for run in runs for name in run.params})
        ],
        Difference("seed", [run.seed for run in runs]),
        Difference("split", [split_label(run.split) for run in runs]),
        Difference("data", [str(run.data_snapshot.get("sha256", ""))[:8] or None for run in runs]),
        Difference("parent", [f"run {run.parent_id}" if run.parent_id else None for run in runs]),
    ]
    return [row for row in rows if len({repr(value) for value in row.values}) > 1]


def _baseline(
    runs: list[TrainingRun], baseline: TrainingRun | None, live_run_id: int | None
) -> tuple[TrainingRun | None, str]:
    if baseline is not None and any(run.pk == baseline.pk for run in runs):
        return next(run for run in runs if run.pk == baseline.pk), "picked"
    live = next((run for run in runs if run.pk == live_run_id), None)
    if live is not None:
        return live, "the live run (none picked)"
    oldest = min(runs, key=lambda run: (run.created_at, run.pk), default=None)
    return oldest, "the oldest run (none picked)"


def _paired(base: RunEvaluation, other: RunEvaluation, metric: str) -> PairedTest | None:
    a, b = align(base.user_ids, base.vectors[metric], other.user_ids, other.vectors[metric])
    return paired_test(a, b) if len(a) >= 2 else None


def comparison_csv_header() -> list[str]:
    return [
        "metric",
        "run",
        "baseline",
        "mean",
        "ci_low",
        "ci_high",
        "difference",
        "difference_ci_low",
        "difference_ci_high",
        "p_paired_t",
        "p_wilcoxon",
        "paired_users",
        "not_paired_because",
    ]


def comparison_csv_rows(comparison: RunComparison) -> list[list[Any]]:
    """One row per metric and run: its mean and interval, and its paired test against the baseline (empty for
    the baseline itself, and for a run tested on other pairs, whose reason is given instead)."""
    rows = []
    for metric in comparison.metrics:
        for run, interval, test in zip(
            comparison.runs, comparison.intervals[metric], comparison.tests[metric], strict=True
        ):
            paired: list[Any] = [""] * 6
            if test is not None:
                paired = [
                    test.mean_difference,
                    test.interval.low,
                    test.interval.high,
                    test.p_value,
                    test.wilcoxon_p,
                    test.n_users,
                ]
            reason = comparison.unpaired.get(run.pk, "")
            rows.append(
                [metric, run.pk, comparison.baseline.pk, interval.mean, interval.low, interval.high, *paired, reason]
            )
    return rows
