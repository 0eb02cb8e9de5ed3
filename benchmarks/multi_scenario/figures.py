"""Each part's results as flat ``DATASET_...`` keys of numbers, with the targets beside them."""

from __future__ import annotations

import dataclasses
import statistics

from benchmarks.multi_scenario.adaptation import Adaptation, summary_figures
from benchmarks.multi_scenario.cold import DRAW_FIGURES
from benchmarks.multi_scenario.config import HYBRIDS

TARGETS = {"finetune_gain_smallest": 0.10, "finetune_worst_loss": -0.01, "student_share_of_ndcg": 0.95,
           "student_parameter_share": 0.25, "hybrid_over_popularity_cold": 3.0}  # fmt: skip


def per_scenario_figures(dataset: str, results: dict[str, dict]) -> dict[str, float]:
    """``{scenario: {label: value}}`` as flat ``DATASET_SCENARIO_LABEL`` keys."""
    key = dataset.replace("-", "_")
    return {f"{key}_{scenario}_{label}": value for scenario, entry in results.items() for label, value in entry.items()}


def adaptation_figures(dataset: str, results: Adaptation) -> dict[str, float]:
    """(a)-(d) per scenario, the group's fits, and the transfer and student figures the targets read."""
    key = dataset.replace("-", "_")
    flat = {}
    for model, summary in (("pretrain", results.pretrain), ("star", results.star)):
        flat.update({f"{key}_group_{model}_{name}": value for name, value in summary_figures(summary).items()})
    for scenario, entry in results.scenarios.items():
        prefix = f"{key}_{scenario.replace('-', '_')}"
        for field, values in dataclasses.asdict(entry).items():
            if isinstance(values, dict):
                flat.update({f"{prefix}_{field}_{name}": round(float(value), 5) for name, value in values.items()})
            else:
                flat[f"{prefix}_{field}"] = values
    members = results.scenarios.values()
    smallest = min(members, key=lambda entry: entry.events)
    gains = {id(entry): entry.finetuned["ndcg"] / entry.alone["ndcg"] - 1 for entry in members if entry.alone["ndcg"]}
    flat[f"{key}_finetune_gain_smallest"] = round(gains.get(id(smallest), 0.0), 4)
    flat[f"{key}_finetune_worst_loss"] = round(min(gains.values()), 4)
    flat[f"{key}_student_share_of_ndcg_min"] = round(
        min(entry.student["ndcg"] / entry.finetuned["ndcg"] for entry in members if entry.finetuned["ndcg"]), 4
    )
    flat[f"{key}_student_parameter_share_max"] = round(
        max(entry.student["parameters"] / entry.finetuned["parameters"] for entry in members), 4
    )
    return flat


def cold_figures(dataset: str, draws: list[dict]) -> dict[str, float]:
    """(e): the first draw in full, the others' headline figures, and each hybrid's ratio to popularity."""
    key = dataset.replace("-", "_")
    cold = draws[0]
    flat = {f"{key}_cold_{metric}": round(float(value), 5) for metric, value in cold.items()}
    for index, draw in enumerate(draws[1:], start=1):
        figures = [metric for metric in DRAW_FIGURES if metric in draw]
        flat.update({f"{key}_cold_draw{index}_{metric}": round(float(draw[metric]), 5) for metric in figures})
    trained = [label for label in HYBRIDS.values() if f"{label}_ndcg" in cold]
    for hybrid in trained if len(draws) > 1 else ():
        ratios = [draw[f"{hybrid}_ndcg"] / draw["popularity_ndcg"] for draw in draws]
        flat[f"{key}_{hybrid}_over_popularity_cold_mean_of_draws"] = round(statistics.mean(ratios), 3)
        flat[f"{key}_{hybrid}_over_popularity_cold_min_of_draws"] = round(min(ratios), 3)
    for hybrid in trained if cold.get("popularity_ndcg") else ():
        flat[f"{key}_{hybrid}_over_popularity_cold"] = round(cold[f"{hybrid}_ndcg"] / cold["popularity_ndcg"], 3)
    return flat


def target_figures() -> dict[str, float]:
    return {f"target_{key}": value for key, value in TARGETS.items()}
