"""RecBole 1.2.1 and this platform on MovieLens 100K under one protocol: Pop, ItemKNN, BPR and EASE.

    .venv/bin/python -m benchmarks.recbole_compare [--data ../shared/data/ml-100k] [--bpr-epochs 300]
        [--bpr-seeds 3] [--repeats 3]

Protocol on both sides: ratings >= 3 kept; per-user random 8:1:1 split (train / validation / test);
full ranking over every item with the user's training items excluded (and, for the test set, the
validation items); K = 10; seed 2020; two torch threads. RecBole runs first in its own virtualenv
(benchmarks/peers/setup_recbole.sh creates it) and hands over its exact split, on which our models
are then trained and tested, so both sides see the same draw; our models on our own split of the same
protocol are reported for reference. Training time is everything a model needs before it can rank,
validation included on both sides (BPR early-stops on it); data loading is excluded. Closed-form
models are trained ``--repeats`` times on each side and the fastest run is kept; BPR is trained with
``--bpr-seeds`` seeds on each side and its metrics and times averaged. See benchmarks/peers/README.md.
"""

import argparse
import json
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.datasets import filter_min_weight, reindex
from benchmarks.recbole_peer import METRICS, SEED, Model, comparison_parser, comparison_report, recbole_run_with_split
from benchmarks.results_io import machine, table
from training.algorithms.base import EpochReport
from training.algorithms.registry import get_algorithm
from training.evaluation.ranking import evaluate
from training.evaluation.splits import split_random
from training.interactions import HeldOut, InteractionData

MIN_RATING = 3.0
RATIOS = (0.8, 0.1, 0.1)
TARGET_METRIC_RATIO_MIN = 0.98
TARGET_TRAIN_TIME_RATIO_MAX = 1.0
TARGET_EASE_TRAIN_SECONDS_MAX = 1.0
TIMES = {"train_seconds": 4}  # the times compared, by their decimals

# Our sparse-tensor code triggers two torch notices (beta CSR support, invariant checks) on every call.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")


POP = Model("pop", "Pop", "Pop", "popularity", {"weighted": False})
MODELS = (
    POP,
    Model("itemknn", "ItemKNN", "ItemKNN", "item_knn", {"k": 100, "shrink": 0.0}),
    # RecBole stops after stopping_step + 1 = 11 epochs without a better validation score.
    Model(
        "bpr",
        "BPR",
        "BPR",
        "bpr",
        {
            "embedding_size": 64,
            "learning_rate": 1e-3,
            "regularization": 0.0,
            "epochs": 300,
            "batch_size": 2048,
            "negatives": 1,
            "early_stopping_patience": 11,
        },
    ),
    Model("ease", "EASE", "EASE", "ease", {"l2": 250.0}),
)
# RecBole's stock Pop undercounts (its issues #1844 and #2198): also run with the upstream fix.
POP_FIXED = "PopFixed"


@dataclass(frozen=True)
class SplitData:
    """Training events and the held-out validation and test sets, in one index space."""

    train: InteractionData
    validation: HeldOut
    test: HeldOut


def main() -> None:
    parser = comparison_parser(__doc__)
    parser.add_argument("--bpr-epochs", type=int, default=300, help="most BPR epochs, the same on both sides")
    parser.add_argument("--repeats", type=int, default=3, help="training runs per closed-form model")
    parser.add_argument("--bpr-seeds", type=int, default=3, help="BPR runs (seeds 2020, 2021, ...), averaged")
    args = parser.parse_args()
    started = time.perf_counter()
    recbole, shared_split = recbole_run_with_split(
        name="recbole-compare",
        data=args.data,
        models=[model.recbole for model in MODELS] + [POP_FIXED],
        options=[
            *("--bpr-epochs", str(args.bpr_epochs), "--repeats", str(args.repeats)),
            *("--bpr-seeds", ",".join(map(str, bpr_seeds(args)))),
        ],
        threads=args.threads,
        load=load_recbole_split,
    )
    ours = {model.key: run_ours(model, shared_split, args) for model in MODELS}
    own_split = our_split(args.data / "u.data")
    ours_own_split = {model.key: run_ours(model, own_split, args, seeds=[SEED]) for model in MODELS}
    figures = collect_figures(recbole, ours, ours_own_split, time.perf_counter() - started, args)
    report(figures, args)


def load_recbole_split(path: Path) -> SplitData:
    """RecBole's split (raw MovieLens ids) in our index space: users and items numbered in id order.

    Every model here reads only the binary user × item matrix, so events get weight 1 and timestamp 0.
    """
    arrays = np.load(path)
    parts = ("train", "valid", "test")
    users = np.unique(np.concatenate([arrays[f"{part}_users"] for part in parts]))
    items = np.unique(np.concatenate([arrays[f"{part}_items"] for part in parts]))
    indexed = {
        part: (np.searchsorted(users, arrays[f"{part}_users"]), np.searchsorted(items, arrays[f"{part}_items"]))
        for part in parts
    }
    train_users, train_items = indexed["train"]
    train = InteractionData(
        n_users=len(users),
        n_items=len(items),
        users=train_users,
        items=train_items,
        weights=np.ones(len(train_users), dtype=np.float32),
        timestamps=np.zeros(len(train_users), dtype=np.int64),
    )
    validation = HeldOut.from_pairs(len(users), len(items), *indexed["valid"])
    test = HeldOut.from_pairs(len(users), len(items), *indexed["test"])
    return SplitData(train, validation, test)


def our_split(ratings: Path) -> SplitData:
    """The same protocol with the platform's own filter and per-user random split (a different draw)."""
    raw = np.loadtxt(ratings, dtype=np.int64)
    data = InteractionData(
        n_users=int(raw[:, 0].max()) + 1,
        n_items=int(raw[:, 1].max()) + 1,
        users=raw[:, 0],
        items=raw[:, 1],
        weights=raw[:, 2].astype(np.float32),
        timestamps=raw[:, 3],
    )
    data, _, _ = reindex(filter_min_weight(data, threshold=MIN_RATING))
    split = split_random(data, seed=SEED, ratios=RATIOS)
    return SplitData(split.train, split.validation, split.test)


def run_ours(model: Model, split: SplitData, args: argparse.Namespace, *, seeds: list[int] | None = None) -> dict:
    """Train (validation included, as RecBole's fit does) and test one of our models, as run_recbole.py does.

    BPR: once per seed, metrics, time and epochs averaged. Closed-form models: ``--repeats`` runs
    for timing, the fastest kept, tested once (they are deterministic).
    """
    if model.key == "bpr":
        params, seeds = {**model.params, "epochs": args.bpr_epochs}, seeds or bpr_seeds(args)
    else:
        params, seeds = model.params, [SEED] * args.repeats
    runs = [
        _train_and_test(model, params, split, seed, test=model.key == "bpr" or index == 0)
        for index, seed in enumerate(seeds)
    ]
    tested = [run for run in runs if "test" in run]
    seconds = [run["train_seconds"] for run in runs]
    result = {
        "test": {name: statistics.mean(run["test"][name] for run in tested) for _, name, _ in METRICS},
        "train_seconds": statistics.mean(seconds) if model.key == "bpr" else min(seconds),
        "epochs_run": statistics.mean(run["epochs_run"] for run in tested),
        "ndcg_by_seed": [run["test"]["ndcg@10"] for run in tested],
    }
    print(
        f"ours {model.label}: {json.dumps({name: round(result['test'][name], 6) for _, name, _ in METRICS})}, "
        f"training {result['train_seconds']:.2f}s, {result['epochs_run']:g} epoch(s)",
        file=sys.stderr,
        flush=True,
    )
    return result


def _train_and_test(model: Model, params: dict, split: SplitData, seed: int, *, test: bool) -> dict:
    recommender = get_algorithm(model.ours)(params, seed=seed)
    reports: list[EpochReport] = []
    started = time.perf_counter()
    recommender.fit(split.train, reports.append, validation=split.validation)
    run = {"train_seconds": time.perf_counter() - started, "epochs_run": _epochs_run(reports)}
    if test:
        run["test"] = evaluate(recommender, split.train, split.test, ks=[10], exclude=split.validation)["metrics"]
    return run


def bpr_seeds(args: argparse.Namespace) -> list[int]:
    return [SEED + offset for offset in range(args.bpr_seeds)]


def _epochs_run(reports: list[EpochReport]) -> int:
    return sum(1 for report in reports if report.phase == "train") or 1


def collect_figures(
    recbole: dict, ours: dict, ours_own_split: dict, wall_seconds: float, args: argparse.Namespace
) -> dict:
    """Flat figures: per model and metric ours, RecBole's and the ratio, then the targets."""
    figures: dict = {
        "protocol": "ml-100k, ratings >= 3, per-user random 8:1:1 split (RecBole's draw), full ranking, K=10",
        "seed": SEED,
        "threads": args.threads,
        "repeats_closed_form": args.repeats,
        "bpr_max_epochs": args.bpr_epochs,
        "n_users": recbole["n_users"],
        "n_items": recbole["n_items"],
        "recbole_version": recbole["recbole_version"],
        "machine": machine(),
    }
    for model in MODELS:
        figures.update(model.figures(ours[model.key], recbole["models"][model.recbole], times=TIMES))
        for key, name, _ in METRICS:
            figures[f"{model.key}_{key}_ours_own_split"] = round(ours_own_split[model.key]["test"][name], 6)
    fixed = POP.figures(ours["pop"], recbole["models"][POP_FIXED], times=TIMES)
    figures.update({f"{key}_fixed": value for key, value in fixed.items() if "recbole" in key or "ratio" in key})
    recbole_bpr = recbole["models"]["BPR"]
    figures |= {
        "bpr_seeds": ", ".join(map(str, bpr_seeds(args))),
        "bpr_epochs_mean_ours": round(ours["bpr"]["epochs_run"], 1),
        "bpr_epochs_mean_recbole": round(recbole_bpr["epochs_run"], 1),
        "bpr_ndcg10_by_seed_ours": _listed(ours["bpr"]["ndcg_by_seed"]),
        "bpr_ndcg10_by_seed_recbole": _listed(run["test"]["ndcg@10"] for run in recbole_bpr["runs"]),
    }
    figures.update(
        {
            "target_metric_ratio_min": TARGET_METRIC_RATIO_MIN,
            "target_train_time_ratio_max": TARGET_TRAIN_TIME_RATIO_MAX,
            "target_ease_train_seconds_max": TARGET_EASE_TRAIN_SECONDS_MAX,
        }
    )
    figures["targets_missed"] = ", ".join(missed_targets(figures))
    figures["recbole_total_seconds"] = round(recbole["total_seconds"], 1)
    figures["benchmark_wall_seconds"] = round(wall_seconds, 1)
    return figures


def _listed(values) -> str:
    return ", ".join(f"{value:.4f}" for value in values)


def missed_targets(figures: dict) -> list[str]:
    """The result keys that miss their target; Pop is held against both stock and fixed RecBole Pop."""
    comparisons = [(model.key, "") for model in MODELS] + [("pop", "_fixed")]
    missed = []
    for key, suffix in comparisons:
        ratios = [f"{key}_{metric}_ratio{suffix}" for metric, _, _ in METRICS]
        missed += [name for name in ratios if figures[name] < TARGET_METRIC_RATIO_MIN]
        if figures[f"{key}_train_seconds_ratio{suffix}"] > TARGET_TRAIN_TIME_RATIO_MAX:
            missed.append(f"{key}_train_seconds_ratio{suffix}")
    if figures["ease_train_seconds_ours"] > TARGET_EASE_TRAIN_SECONDS_MAX:
        missed.append("ease_train_seconds_ours")
    return missed


def report(figures: dict, args: argparse.Namespace) -> None:
    comparison_report("recbole_compare", figures, markdown(figures, args))


def markdown(figures: dict, args: argparse.Namespace) -> str:
    header = ("model", *(label for _, _, label in METRICS), "training s")
    rows = [_row(model.label, model.key, figures) for model in MODELS]
    rows.insert(1, _row("Pop vs RecBole Pop with its counting fix", "pop", figures, suffix="_fixed"))
    own = [
        (model.label, *(f"{figures[f'{model.key}_{key}_ours_own_split']:.4f}" for key, _, _ in METRICS))
        for model in MODELS
    ]
    missed = figures["targets_missed"] or "none"
    return f"""## RecBole 1.2.1 vs this platform (`python -m benchmarks.recbole_compare`)

`.venv/bin/python -m benchmarks.recbole_compare` ({figures["benchmark_wall_seconds"]:.0f} s in all, RecBole's side
{figures["recbole_total_seconds"]:.0f} s; {figures["machine"]}, {args.threads} torch threads on both sides).

- Data: MovieLens 100K, ratings ≥ 3 kept: {figures["n_users"]} users, {figures["n_items"]} items.
- Split: per user, random 8:1:1 (train / validation / test), drawn by RecBole with seed {SEED}; our models are
  trained and tested on exactly that split.
- Ranking: full, over every item, the user's training items excluded (and validation items when testing); K = 10.
- Training time: everything a model needs before it can rank, validation included on both sides, data loading
  excluded; Pop, ItemKNN and EASE fastest of {args.repeats} runs, BPR mean of {args.bpr_seeds} seeds.

Each cell is **ours** / RecBole (ours ÷ RecBole):

{table(rows, header)}

Targets: every metric at least {TARGET_METRIC_RATIO_MIN:.0%} of RecBole's, training time at most RecBole's, EASE
training under {TARGET_EASE_TRAIN_SECONDS_MAX:g} s. Missed: {missed}.

Hyperparameters, RecBole 1.2.1's defaults on both sides: ItemKNN k = 100, shrink 0; EASE λ = 250; BPR 64
dimensions, Adam at 0.001, batches of 2,048, one uniform negative per positive, no L2, at most {args.bpr_epochs}
epochs, stopping after 11 epochs without a better validation NDCG@10 (RecBole's `stopping_step: 10`, with
`valid_metric` NDCG@10 instead of its default MRR@10).

BPR's figures are means over seeds {figures["bpr_seeds"]} on each side (same split; the seed sets initialisation,
batch order and negatives): one seed's early stopping moves test NDCG@10 by a few percent. Test NDCG@10 by seed:
ours {figures["bpr_ndcg10_by_seed_ours"]}; RecBole {figures["bpr_ndcg10_by_seed_recbole"]}. Epochs run, mean:
ours {figures["bpr_epochs_mean_ours"]:g}, RecBole {figures["bpr_epochs_mean_recbole"]:g}.

RecBole's stock Pop counts an item once per training batch however often it occurs in the batch (RecBole issues
#1844 and #2198; fix in PR #2199), so popularity saturates at the number of batches. The second row compares
with RecBole's Pop patched with that fix (`PopFixed` in `benchmarks/peers/run_recbole.py`).

For reference, ours on the platform's own split of the same protocol (`split_random`, seed {SEED}, another draw):

{table(own, ("model", *(label for _, _, label in METRICS)))}
"""


def _row(label: str, key: str, figures: dict, suffix: str = "") -> tuple:
    cells = [_cell(figures, f"{key}_{metric}", suffix, "{:.4f}") for metric, _, _ in METRICS]
    return (label, *cells, _cell(figures, f"{key}_train_seconds", suffix, "{:.2f}"))


def _cell(figures: dict, stem: str, suffix: str, number: str) -> str:
    ours, theirs, ratio = (
        figures[f"{stem}_{side}{suffix if side != 'ours' else ''}"] for side in ("ours", "recbole", "ratio")
    )
    return f"**{number.format(ours)}** / {number.format(theirs)} ({ratio:.3f})"


if __name__ == "__main__":
    main()
