"""EASE artifacts that fit: quality and size of the item × item matrix stored as float32, float16, or pruned
to its top neighbours per item, on ml-latest-small (9,700 films).

    .venv/bin/python -m benchmarks.ease_storage [--data ../shared/data/ml-latest-small]

One fit (λ = 250, per-user random 80/10/10 split of ratings ≥ 3.5), then each storage form scored by full ranking
on the test part. Sizes are of the matrix alone: dense n² × 4 or 2 bytes; pruned n × k × (2 + 4) bytes (float16
values and int32 column indexes).
"""

import argparse
import csv
from pathlib import Path

import numpy as np
import torch

from benchmarks.datasets import filter_min_weight, reindex
from benchmarks.results_io import ROOT, machine, write_results
from training.algorithms.registry import get_algorithm
from training.evaluation.ranking import evaluate
from training.evaluation.splits import split_random
from training.interactions import InteractionData

SEED = 42
MIN_RATING = 3.5
NEIGHBOURS = (50, 200)
TARGET_FLOAT16_NDCG_RATIO = 0.99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ml-latest-small")
    args = parser.parse_args()
    split = split_random(_ratings(args.data / "ratings.csv"), seed=SEED, ratios=(0.8, 0.1, 0.1))
    model = get_algorithm("ease")({"l2": 250.0}, seed=SEED)
    model.fit(split.train)
    dense = model._solve()  # float32, before the rounding fit applies
    n = dense.shape[0]
    forms = {"float32": (dense, n * n * 4), "float16": (dense.half().float(), n * n * 2)}
    for k in NEIGHBOURS:
        forms[f"top{k}"] = (_pruned(dense.half().float(), k), n * k * 6)
    figures: dict = {"items": n, "users": split.train.n_users}
    for name, (weights, size) in forms.items():
        model.weights = weights
        metrics = evaluate(model, split.train, split.test, ks=[10], exclude=split.validation)["metrics"]
        figures[f"{name}_ndcg_at_10"] = round(metrics["ndcg@10"], 5)
        figures[f"{name}_recall_at_10"] = round(metrics["recall@10"], 5)
        figures[f"{name}_megabytes"] = round(size / 2**20, 2)
        print(name, figures[f"{name}_ndcg_at_10"], figures[f"{name}_megabytes"], "MB", flush=True)
    base = figures["float32_ndcg_at_10"]
    for name in forms:
        figures[f"{name}_ndcg_ratio"] = round(figures[f"{name}_ndcg_at_10"] / base, 4)
    figures["target_float16_ndcg_ratio"] = TARGET_FLOAT16_NDCG_RATIO
    figures["machine"] = machine()
    write_results("ease_storage", figures)


def _ratings(path: Path) -> InteractionData:
    with path.open() as handle:
        rows = np.array([(int(r[0]), int(r[1]), float(r[2]), int(r[3])) for r in csv.reader(handle) if r[0].isdigit()])
    data = InteractionData(
        n_users=int(rows[:, 0].max()) + 1,
        n_items=int(rows[:, 1].max()) + 1,
        users=rows[:, 0].astype(np.int64),
        items=rows[:, 1].astype(np.int64),
        weights=rows[:, 2].astype(np.float32),
        timestamps=rows[:, 3].astype(np.int64),
    )
    return reindex(filter_min_weight(data, threshold=MIN_RATING))[0]


def _pruned(weights: torch.Tensor, k: int) -> torch.Tensor:
    """Each row ``B[i]`` (item i's effect on every other item) reduced to its k largest weights."""
    values, columns = torch.topk(weights, k, dim=1)
    return torch.zeros_like(weights).scatter_(1, columns, values)


if __name__ == "__main__":
    main()
