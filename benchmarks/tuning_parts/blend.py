"""Blends pay: on ml-latest-small (every rating ≥ 3, random 8:1:1 split per user), the test NDCG@10 of the best
two-model blend against the better of its two members.

The members are runs of the default models (``--blend-algorithms``: popularity, item-kNN, EASE and iALS; BPR is
left out by default, one run of it taking minutes on 2 cores); every pair of them is blended by a ``blend`` run,
whose weights are fitted on validation. The best blend is the one best on *validation* NDCG@10 (what its run's
history records); its test NDCG@10 over its better member's is the figure, the target ≥ 1.02
(``blend_over_best_member``).
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.tuning_parts import add_algorithms_option
from benchmarks.tuning_parts.movielens_db import DATA, movielens_database, ndcg_on_test, run_default, scenario_add

FOLDER = "ml-latest-small"
ALGORITHMS = ("popularity", "item_knn", "ease", "ials")
TARGET = 1.02


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--blend-data", type=Path, default=DATA / FOLDER, help="The MovieLens folder to blend on.")
    add_algorithms_option(parser, "--blend-algorithms", default=ALGORITHMS, what="default models to blend in pairs")


def run(args: argparse.Namespace) -> dict[str, Any]:
    with movielens_database(args.blend_data):
        scenario = scenario_add("blend-ml-latest-small")
        members = [run_default(scenario, algorithm) for algorithm in args.blend_algorithms]
        blends = [run_default(scenario, "blend", members=pair) for pair in itertools.combinations(members, 2)]
        best = max(blends, key=_validation_ndcg)
        return _figures(best, blends)


def _validation_ndcg(run) -> float:
    return float(run.history[-1]["ndcg@10"])


def _figures(best, blends: list) -> dict[str, Any]:
    first, second = sorted(best.members.all(), key=ndcg_on_test, reverse=True)
    members = enumerate(best.members.order_by("pk"), start=1)
    weights = {run.algorithm: best.history[-1][f"weight_{index}"] for index, run in members}
    print(f"best blend: {weights}, test ndcg@10 {ndcg_on_test(best):.4f}", flush=True)
    ratios = [ndcg_on_test(run) / max(ndcg_on_test(member) for member in run.members.all()) for run in blends]
    return {
        "blend_pairs": len(blends),
        "blend_test_ndcg_at_10": round(ndcg_on_test(best), 4),
        "blend_validation_ndcg_at_10": round(_validation_ndcg(best), 4),
        "blend_best_member_test_ndcg_at_10": round(ndcg_on_test(first), 4),
        "blend_other_member_test_ndcg_at_10": round(ndcg_on_test(second), 4),
        "blend_best_member_weight": round(weights[first.algorithm], 2),
        "blend_over_best_member": round(ndcg_on_test(best) / ndcg_on_test(first), 4),
        "blend_over_best_member_highest_of_pairs": round(max(ratios), 4),
        "target_blend_over_best_member": TARGET,
    }


def report_rows(figures: dict[str, Any]) -> Iterator[tuple[str, str, str, bool | None]]:
    if "blend_over_best_member" not in figures:
        return
    ratio, target = figures["blend_over_best_member"], figures["target_blend_over_best_member"]
    blend, member = figures["blend_test_ndcg_at_10"], figures["blend_best_member_test_ndcg_at_10"]
    what = f"ml-latest-small: best two-model blend (on validation, of {figures['blend_pairs']}) ÷ its best member"
    yield what, f"{ratio:.3f}× ({blend:.4f} vs {member:.4f})", f"≥ {target:g}×", ratio >= target
    yield "the same, highest of every pair", f"{figures['blend_over_best_member_highest_of_pairs']:.3f}×", "", None
