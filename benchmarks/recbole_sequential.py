"""RecBole 1.2.1 and this platform on MovieLens 100K under one sequential protocol: SASRec and GRU4Rec.

    .venv/bin/python -m benchmarks.recbole_sequential [--data ../shared/data/ml-100k] [--sasrec-epochs 10]
        [--gru4rec-epochs 10] [--stopping-step 3] [--epochs 200] [--patience 10] [--recbole-results FILE]

Protocol on both sides: every interaction kept; each user's events in time order, the last one for
test, the one before for validation, the rest for training (RecBole's ``LS: valid_and_test``,
``order: TO``); full ranking over every item with nothing masked (RecBole masks no history item for
sequential models); the test prediction reads the training sequence plus the validation item, the
validation prediction the training sequence; at most the last 50 items are read; K = 10; seed 2020;
two torch threads. RecBole runs first in its own virtualenv (benchmarks/peers/setup_recbole.sh
creates it) and hands over its exact split, on which our models are then trained and tested.

RecBole's SASRec takes about three minutes an epoch on 2 CPU cores, so its epochs are capped
(``--sasrec-epochs``, ``--gru4rec-epochs``, ``--stopping-step``); ours run with the platform's
defaults (at most ``--epochs``, early stopping after ``--patience`` epochs without a better
validation NDCG@10). Per side and model: test metrics, median seconds of a training epoch (the
training pass alone), the wall time from the start of ``fit`` to the end of the best validation
epoch, and the whole training time. See benchmarks/peers/README.md.

``--recbole-results FILE`` (an earlier ``recbole_sequential.json``) re-measures our side only: RecBole hands over
its split without training (its split is deterministic, and checked against the file's sizes) and its figures are
read from FILE, which must have the same RecBole version, epoch caps and stopping_step. The results then carry
``recbole_figures_measured_at``; time ratios compare two runs, possibly under different loads of the machine (the
load average is recorded before and after ours).
"""

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmarks.peers.epoch_timing import training_pass_seconds
from benchmarks.recbole_peer import METRICS, SEED, Model, comparison_parser, comparison_report, recbole_run_with_split
from benchmarks.results_io import machine, table
from training.algorithms.base import EpochReport, Recommender
from training.algorithms.registry import get_algorithm
from training.evaluation.metrics import mean_metrics, ranking_metrics
from training.interactions import HeldOut, InteractionData

K = 10
MAX_LENGTH = 50
# The product issue's target: our SASRec at least as good as RecBole's, in at most a fifth of its time.
TARGET_SASREC_NDCG_RATIO_MIN = 1.0
TARGET_SASREC_TIME_TO_BEST_RATIO_MAX = 0.2
TIMES = ("seconds_per_epoch", "seconds_to_best", "train_seconds")


MODELS = (
    Model("sasrec", "SASRec", "SASRec", "sasrec", {"embedding_size": 64, "layers": 2, "heads": 2}),
    Model("gru4rec", "GRU4Rec", "GRU4Rec", "gru4rec", {"embedding_size": 64, "hidden_size": 128, "layers": 1}),
)


@dataclass(frozen=True)
class SequenceSplit:
    """RecBole's leave-last-out split in our index space (users and items numbered in raw-id order).

    ``train`` holds the training sequences, each user's events in RecBole's order (timestamps are
    positions in the sequence); ``histories`` ``[u]`` is user ``u``'s training items (index array,
    oldest first); ``valid_items`` and ``test_items`` ``(n_users,)`` int64 are the held-out items.
    """

    train: InteractionData
    validation: HeldOut
    histories: list[np.ndarray]
    valid_items: np.ndarray
    test_items: np.ndarray

    def test_histories(self) -> list[np.ndarray]:
        """What the test prediction reads: the training sequence plus the validation item."""
        return [np.append(history, item) for history, item in zip(self.histories, self.valid_items, strict=True)]


def main() -> None:
    parser = comparison_parser(__doc__)
    parser.add_argument("--sasrec-epochs", type=int, default=10, help="most epochs of RecBole's SASRec")
    parser.add_argument("--gru4rec-epochs", type=int, default=10, help="most epochs of RecBole's GRU4Rec")
    parser.add_argument("--stopping-step", type=int, default=3, help="RecBole's stopping_step (patience - 1)")
    parser.add_argument("--epochs", type=int, default=200, help="most epochs of ours")
    parser.add_argument("--patience", type=int, default=10, help="our early_stopping_patience")
    parser.add_argument(
        "--recbole-results", type=Path, help="reuse RecBole's figures from this earlier results file (ours only)"
    )
    args = parser.parse_args()
    previous = json.loads(args.recbole_results.read_text()) if args.recbole_results else None
    load_before = round(os.getloadavg()[0], 1)
    started = time.perf_counter()
    recbole, split = recbole_run_with_split(
        name="recbole-sequential",
        data=args.data,
        models=[model.recbole for model in MODELS],
        options=[
            *("--protocol", "sequential", "--stopping-step", str(args.stopping_step)),
            *("--epochs", ",".join(f"{name}={cap}" for name, cap in recbole_caps(args).items())),
            *(["--split-only"] if previous else []),
        ],
        threads=args.threads,
        load=load_split,
    )
    if previous:
        recbole = recbole_from_results(previous, recbole, split, args)
    ours = {model.key: run_ours(model, split, args) for model in MODELS}
    figures = collect_figures(recbole, ours, split, time.perf_counter() - started, args)
    figures |= {"load_average_before": load_before, "load_average_after": round(os.getloadavg()[0], 1)}
    report(figures)


def recbole_caps(args: argparse.Namespace) -> dict[str, int]:
    return {"SASRec": args.sasrec_epochs, "GRU4Rec": args.gru4rec_epochs}


def recbole_from_results(previous: dict, fresh: dict, split: SequenceSplit, args: argparse.Namespace) -> dict:
    """RecBole's figures as ``run_recbole.py`` reports them, read back from an earlier results file of this
    benchmark; ``fresh`` is RecBole's split-only run. Refuses a file of another RecBole, split, cap or patience."""
    expected = {
        "recbole_version": fresh["recbole_version"],
        "n_users": fresh["n_users"],
        "n_items": fresh["n_items"],
        "n_train_events": split.train.n_events,
        "recbole_stopping_step": args.stopping_step,
        **{f"{model.key}_max_epochs_recbole": recbole_caps(args)[model.recbole] for model in MODELS},
    }
    if differs := [
        f"{key} {previous.get(key)} (now {value})" for key, value in expected.items() if previous.get(key) != value
    ]:
        raise SystemExit(f"--recbole-results is not from this run's RecBole setup: {', '.join(differs)}")
    models = {}
    for model in MODELS:
        figures = {name: previous[f"{model.key}_{name}_recbole"] for name in ("best_epoch", "max_epochs")}
        models[model.recbole] = figures | {
            "test": {name: previous[f"{model.key}_{metric}_recbole"] for metric, name, _ in METRICS},
            "valid": {"ndcg@10": previous[f"{model.key}_valid_ndcg10_recbole"]},
            "epochs_run": previous[f"{model.key}_epochs_recbole"],
            **{name: previous[f"{model.key}_{name}_recbole"] for name in TIMES},
        }
    measured_at = previous.get("recbole_figures_measured_at") or previous["measured_at"]
    return fresh | {"models": models, "total_seconds": previous["recbole_total_seconds"], "measured_at": measured_at}


def load_split(path: Path) -> SequenceSplit:
    """RecBole's exported split (raw MovieLens ids, training items in sequence order) in our index space."""
    arrays = np.load(path)
    parts = ("train", "valid", "test")
    users = np.unique(np.concatenate([arrays[f"{part}_users"] for part in parts]))
    items = np.unique(np.concatenate([arrays[f"{part}_items"] for part in parts]))
    train_users = np.searchsorted(users, arrays["train_users"])
    train_items = np.searchsorted(items, arrays["train_items"])
    held_out = {}
    for part in ("valid", "test"):
        held = np.zeros(len(users), dtype=np.int64)
        held[np.searchsorted(users, arrays[f"{part}_users"])] = np.searchsorted(items, arrays[f"{part}_items"])
        held_out[part] = held
    starts = np.flatnonzero(np.r_[True, train_users[1:] != train_users[:-1]])
    positions = np.arange(len(train_users)) - np.repeat(starts, np.diff(np.r_[starts, len(train_users)]))
    order = np.argsort(positions, kind="stable")  # InteractionData is sorted by time: here, by position
    train = InteractionData(
        n_users=len(users),
        n_items=len(items),
        users=train_users[order],
        items=train_items[order],
        weights=np.ones(len(order), dtype=np.float32),
        timestamps=positions[order],
    )
    histories = [train_items[train_users == user] for user in range(len(users))]
    validation = HeldOut.from_pairs(len(users), len(items), np.arange(len(users)), held_out["valid"])
    return SequenceSplit(train, validation, histories, held_out["valid"], held_out["test"])


def next_item_metrics(
    model: Recommender, histories: list[np.ndarray], targets: np.ndarray, *, exclude_history: bool = False
) -> dict[str, float]:
    """Mean NDCG, Recall, MRR and Hit @10 of predicting ``targets[u]`` after ``histories[u]``, full ranking.

    Nothing is masked, as in RecBole's sequential evaluation; with ``exclude_history`` the items of
    the history are (as the platform's own evaluation does).
    """
    scores = model.score_sequences(histories)
    if exclude_history:
        rows = np.repeat(np.arange(len(histories)), [len(history) for history in histories])
        scores[torch.from_numpy(rows), torch.from_numpy(np.concatenate(histories))] = float("-inf")
    top = torch.topk(scores, K, dim=1).indices.numpy()
    hits = top == targets[:, None]
    return mean_metrics(ranking_metrics(hits, np.ones(len(targets), dtype=np.int64), [K]))


class Timer:
    """Progress callback: when each epoch ended, its validation NDCG@10 and its training pass's seconds.

    Times run from construction (call it just before ``fit``). The model's own validation (training
    items excluded) drives its early stopping; the callback also measures the validation NDCG@10
    with nothing masked, as RecBole does, and its own measuring is left out of the times.
    """

    def __init__(self, model: Recommender, split: SequenceSplit) -> None:
        self.model, self.split = model, split
        self.train_seconds = training_pass_seconds(model)  # a training pass alone, as on RecBole's side
        self.ended_at: list[float] = []
        self.valid_masked: list[float] = []
        self.valid: list[float] = []
        self.excluded = 0.0
        self.start = time.perf_counter()

    def __call__(self, report: EpochReport) -> None:
        now = time.perf_counter()
        self.ended_at.append(now - self.start - self.excluded)
        self.valid_masked.append(report.validation.get("ndcg@10", 0.0))
        self.valid.append(next_item_metrics(self.model, self.split.histories, self.split.valid_items)["ndcg@10"])
        self.excluded += time.perf_counter() - now

    def best_epoch(self) -> int:
        """Index of the epoch the model keeps: the first with the best validation NDCG@10 of its own."""
        return int(np.argmax(self.valid_masked))

    def first_reaching(self, threshold: float) -> float | None:
        """Seconds until the validation NDCG@10 (nothing masked) first reached ``threshold``, or None."""
        return next((ended for ended, ndcg in zip(self.ended_at, self.valid, strict=True) if ndcg >= threshold), None)


def run_ours(model: Model, split: SequenceSplit, args: argparse.Namespace) -> dict:
    """Train one of our models on RecBole's split with early stopping, and test it as RecBole does."""
    params = {**model.params, "max_length": MAX_LENGTH, "epochs": args.epochs, "early_stopping_patience": args.patience}
    recommender = get_algorithm(model.ours)(params, seed=SEED)
    timer = Timer(recommender, split)
    recommender.fit(split.train, timer, validation=split.validation)
    train_seconds = time.perf_counter() - timer.start - timer.excluded
    test_histories = split.test_histories()
    best = timer.best_epoch()
    result = {
        "test": next_item_metrics(recommender, test_histories, split.test_items),
        "test_history_excluded": next_item_metrics(recommender, test_histories, split.test_items, exclude_history=True),
        "valid_ndcg": timer.valid[best],
        "seconds_per_epoch": statistics.median(timer.train_seconds),
        "seconds_to_best": timer.ended_at[best],
        "train_seconds": train_seconds,
        "best_epoch": best + 1,
        "epochs_run": len(timer.ended_at),
        "timer": timer,
    }
    print(
        f"ours {model.label}: {json.dumps({name: round(result['test'][name], 6) for _, name, _ in METRICS})}, "
        f"best epoch {best + 1} at {result['seconds_to_best']:.1f}s, training {train_seconds:.1f}s, "
        f"{result['epochs_run']} epoch(s)",
        file=sys.stderr,
        flush=True,
    )
    return result


def collect_figures(
    recbole: dict, ours: dict, split: SequenceSplit, wall_seconds: float, args: argparse.Namespace
) -> dict:
    """Flat figures: per model and metric ours, RecBole's and the ratio, times and epochs, then the targets."""
    figures: dict = {
        "protocol": "ml-100k, all interactions, leave-last-out per user (RecBole's draw), full ranking, "
        "nothing masked, at most 50 items read, K=10",
        "seed": SEED,
        "threads": args.threads,
        "n_users": recbole["n_users"],
        "n_items": recbole["n_items"],
        "n_train_events": split.train.n_events,
        "recbole_version": recbole["recbole_version"],
        "recbole_figures_measured_at": recbole.get("measured_at"),  # set when read back from an earlier run
        "machine": machine(),
        "cpu_cores": os.cpu_count(),
        "recbole_stopping_step": args.stopping_step,
        "max_epochs_ours": args.epochs,
        "early_stopping_patience_ours": args.patience,
    }
    for model in MODELS:
        theirs = recbole["models"][model.recbole]
        figures[f"{model.key}_max_epochs_recbole"] = theirs["max_epochs"]
        figures.update(_model_figures(model, ours[model.key], theirs))
    figures |= {
        "target_sasrec_ndcg10_ratio_min": TARGET_SASREC_NDCG_RATIO_MIN,
        "target_sasrec_seconds_to_best_ratio_max": TARGET_SASREC_TIME_TO_BEST_RATIO_MAX,
    }
    missed = missed_targets(figures)
    figures["sasrec_target_met"] = not missed
    figures["targets_missed"] = ", ".join(missed)
    figures["recbole_total_seconds"] = round(recbole["total_seconds"], 1)
    figures["benchmark_wall_seconds"] = round(wall_seconds, 1)
    return figures


def _model_figures(model: Model, ours: dict, recbole: dict) -> dict:
    key = model.key
    figures = model.figures(ours, recbole, times=dict.fromkeys(TIMES, 2))
    reached = ours["timer"].first_reaching(recbole["valid"]["ndcg@10"])
    return figures | {
        f"{key}_valid_ndcg10_ours": round(ours["valid_ndcg"], 6),
        f"{key}_valid_ndcg10_recbole": round(recbole["valid"]["ndcg@10"], 6),
        f"{key}_best_epoch_ours": ours["best_epoch"],
        f"{key}_best_epoch_recbole": recbole["best_epoch"],
        f"{key}_epochs_ours": ours["epochs_run"],
        f"{key}_epochs_recbole": recbole["epochs_run"],
        f"{key}_seconds_to_recbole_best_valid_ours": None if reached is None else round(reached, 2),
        f"{key}_ndcg10_ours_history_excluded": round(ours["test_history_excluded"]["ndcg@10"], 6),
    }


def missed_targets(figures: dict) -> list[str]:
    """The SASRec result keys that miss the product issue's target."""
    missed = []
    if figures["sasrec_ndcg10_ratio"] < TARGET_SASREC_NDCG_RATIO_MIN:
        missed.append("sasrec_ndcg10_ratio")
    if figures["sasrec_seconds_to_best_ratio"] > TARGET_SASREC_TIME_TO_BEST_RATIO_MAX:
        missed.append("sasrec_seconds_to_best_ratio")
    return missed


def report(figures: dict) -> None:
    comparison_report("recbole_sequential", figures, markdown(figures))


def markdown(figures: dict) -> str:
    header = (
        "model",
        "side",
        *(label for _, _, label in METRICS),
        "valid NDCG@10",
        "s / epoch",
        "s to best",
        "training s",
        "best / epochs run",
    )
    rows = [row for model in MODELS for row in _rows(model, figures)]
    sasrec_reached = figures["sasrec_seconds_to_recbole_best_valid_ours"]
    reached = (
        f"first reached RecBole's best validation NDCG@10 ({figures['sasrec_valid_ndcg10_recbole']:.4f}) after "
        f"{sasrec_reached:.1f} s"
        if sasrec_reached is not None
        else f"never reached RecBole's best validation NDCG@10 ({figures['sasrec_valid_ndcg10_recbole']:.4f})"
    )
    verdict = "met" if figures["sasrec_target_met"] else f"missed ({figures['targets_missed']})"
    excluded = {model.key: figures[f"{model.key}_ndcg10_ours_history_excluded"] for model in MODELS}
    caps = f"SASRec {figures['sasrec_max_epochs_recbole']}, GRU4Rec {figures['gru4rec_max_epochs_recbole']}"
    return f"""## RecBole 1.2.1 vs this platform: sequential models (`python -m benchmarks.recbole_sequential`)

`.venv/bin/python -m benchmarks.recbole_sequential` ({figures["benchmark_wall_seconds"]:.0f} s in all, RecBole's
side {figures["recbole_total_seconds"]:.0f} s), on a machine with {figures["cpu_cores"]} CPU cores and no GPU
({figures["machine"]}), {figures["threads"]} torch threads on both sides.{reused(figures)}

- Data: MovieLens 100K, every interaction kept: {figures["n_users"]} users, {figures["n_items"]} items,
  {figures["n_train_events"]:,} training events.
- Split: leave-last-out per user, in time order (RecBole's `LS: valid_and_test`, `order: TO`, ties in file
  order); our models are trained and tested on exactly RecBole's split.
- Ranking: full, over every item, nothing masked (RecBole masks no history item for sequential models); the
  validation prediction reads the user's training sequence, the test prediction that plus the validation item;
  at most the last {MAX_LENGTH} items; K = 10.
- Epochs: RecBole's capped at {caps}, stopping_step {figures["recbole_stopping_step"]} (defaults 300 and 10): its
  SASRec takes about {figures["sasrec_seconds_per_epoch_recbole"]:.0f} s an epoch here. Ours: at most
  {figures["max_epochs_ours"]}, early stopping after {figures["early_stopping_patience_ours"]} epochs without a
  better validation NDCG@10 (the platform's defaults).
- Times: s / epoch is the median training pass alone; s to best runs from the start of `fit` to the end of the
  best validation epoch (validation and checkpointing included); training s is the whole `fit`.

{table(rows, header)}

Target (product issue): our SASRec reaches at least RecBole's test NDCG@10 in at most
{TARGET_SASREC_TIME_TO_BEST_RATIO_MAX:.0%} of RecBole's time to its best epoch: **{verdict}**. Our SASRec's
validation NDCG@10 {reached}.

{convergence(figures)}

With the user's history excluded from the ranking, as the platform's own evaluation does, our test NDCG@10 is
{excluded["sasrec"]:.4f} (SASRec) and {excluded["gru4rec"]:.4f} (GRU4Rec).

Hyperparameters. RecBole: its 1.2.1 defaults (SASRec 2 layers, 2 heads, hidden 64, inner 256, dropout 0.5 on
hidden states and attention; GRU4Rec embedding 64, GRU 128, dropout 0.3), softmax cross-entropy over all items,
Adam at 0.001, batches of 2,048 sequences, one target (the last position) per training sequence. Ours: the same
sizes (SASRec embedding 64, 2 layers, 2 heads; GRU4Rec embedding 64, GRU 128, 1 layer), otherwise the platform's
defaults: dropout 0.2 (residual branches, no attention dropout, pre-norm blocks), AdamW at 0.001 without weight
decay, batches of 256 windows of up to {MAX_LENGTH} items, every position of a window trained in one pass.
"""


def reused(figures: dict) -> str:
    """The note on RecBole's figures read back from an earlier run (``--recbole-results``), else nothing."""
    measured_at = figures.get("recbole_figures_measured_at")
    if not measured_at:
        return ""
    return (
        f"\nRecBole's figures are those measured {measured_at[:10]} (`--recbole-results`: same RecBole, split, caps"
        f" and stopping_step); ours were measured in this run, the machine's load average "
        f"{figures['load_average_before']:g} before and {figures['load_average_after']:g} after, so the time ratios "
        "compare two runs."
    )


def convergence(figures: dict) -> str:
    """Where RecBole's models stopped: still improving at their epoch cap, at the cap after a peak, or early."""
    lines = []
    for model in MODELS:
        best, run, cap = (figures[f"{model.key}_{name}_recbole"] for name in ("best_epoch", "epochs", "max_epochs"))
        if best == cap:
            lines.append(f"RecBole's {model.label} was still improving at its cap ({cap} epochs).")
        elif run == cap:
            lines.append(
                f"RecBole's {model.label} peaked at epoch {best}; the cap stopped it at {cap}, before its "
                f"stopping_step ({figures['recbole_stopping_step']}) would have."
            )
        else:
            lines.append(f"RecBole's {model.label} peaked at epoch {best} and early-stopped after {run}.")
    return "\n".join(lines) + (
        "\nThe comparison is against RecBole trained for at most the capped time: uncapped, with its default "
        "stopping_step 10,\nit would train longer and might score higher."
    )


def _rows(model: Model, figures: dict) -> list[tuple]:
    key = model.key

    def side(name: str, suffix: str) -> tuple:
        return (
            model.label,
            name,
            *(f"{figures[f'{key}_{metric}_{suffix}']:.4f}" for metric, _, _ in METRICS),
            f"{figures[f'{key}_valid_ndcg10_{suffix}']:.4f}",
            f"{figures[f'{key}_seconds_per_epoch_{suffix}']:.2f}",
            f"{figures[f'{key}_seconds_to_best_{suffix}']:.1f}",
            f"{figures[f'{key}_train_seconds_{suffix}']:.1f}",
            f"{figures[f'{key}_best_epoch_{suffix}']} / {figures[f'{key}_epochs_{suffix}']}",
        )

    ratio = (
        model.label,
        "ours ÷ RecBole",
        *(f"{figures[f'{key}_{metric}_ratio']:.3f}" for metric, _, _ in METRICS),
        "",
        f"{figures[f'{key}_seconds_per_epoch_ratio']:.3f}",
        f"{figures[f'{key}_seconds_to_best_ratio']:.3f}",
        f"{figures[f'{key}_train_seconds_ratio']:.3f}",
        "",
    )
    return [side("**ours**", "ours"), side("RecBole", "recbole"), ratio]


if __name__ == "__main__":
    main()
