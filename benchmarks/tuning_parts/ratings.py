"""Rating prediction: the platform's ``biased_mf`` against Surprise's ``SVD`` (its defaults) on MovieLens 100K's
five folds, in the same run.

The folds are MovieLens' own u1..u5 (the archive's ``mku.sh`` rule, applied to ``u.data`` in its file order: fold
``k`` tests lines ``20000·(k−1)`` to ``20000·k`` and trains on the rest), written to a temporary folder for Surprise
(``benchmarks/peers/run_surprise.py`` in ``.venv-surprise``, made by ``setup_surprise.sh``). Fold by fold,
Surprise fits and is tested, then ``biased_mf`` with its defaults fits on the same base ratings (every user and
item of ``u.data`` indexed, no validation part, so all ``iterations`` run) and predicts the same test ratings. Each
side's fit is timed ``--ratings-repeats`` times and the fastest kept; torch runs ``--ratings-threads`` threads
(Surprise runs one). Figures: each side's mean RMSE, MAE and fit seconds over the folds, and ours over Surprise's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.recbole_peer import PEERS
from benchmarks.results_io import ROOT
from training.algorithms.registry import get_algorithm
from training.evaluation.rating import rating_errors
from training.interactions import HeldOut, InteractionData

SURPRISE_PYTHON = PEERS / ".venv-surprise" / "bin" / "python"
FOLDS = 5
FOLD_SIZE = 20_000
TARGET_RATIO = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    default = ROOT.parent / "shared" / "data" / "ml-100k"
    parser.add_argument("--ratings-data", type=Path, default=default, help="ratings: the ml-100k folder")
    parser.add_argument("--ratings-folds", type=int, default=FOLDS, help="ratings: how many of u1..u5 to run")
    parser.add_argument("--ratings-repeats", type=int, default=3, help="ratings: fits timed per side and fold")
    parser.add_argument("--ratings-threads", type=int, default=1, help="ratings: torch threads")


def run(args: argparse.Namespace) -> dict:
    if not 1 <= args.ratings_folds <= FOLDS:
        raise SystemExit(f"--ratings-folds must be from 1 to {FOLDS}")
    subprocess.run(["bash", str(PEERS / "setup_surprise.sh")], check=True)
    torch.set_num_threads(args.ratings_threads)
    load_average = os.getloadavg()[0]  # a shared machine: the ratios, measured side by side, are what count
    lines = (args.ratings_data / "u.data").read_text().splitlines()
    ratings = np.array([line.split("\t") for line in lines], dtype=np.int64)  # (100000, 4)
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as folder:
        for fold in range(1, args.ratings_folds + 1):
            test = np.zeros(len(lines), dtype=bool)
            test[FOLD_SIZE * (fold - 1) : FOLD_SIZE * fold] = True
            base_file, test_file = Path(folder) / f"u{fold}.base", Path(folder) / f"u{fold}.test"
            base_file.write_text("\n".join(np.asarray(lines)[~test]) + "\n")
            test_file.write_text("\n".join(np.asarray(lines)[test]) + "\n")
            theirs.append(_surprise(base_file, test_file, args.ratings_repeats))
            ours.append(_biased_mf(ratings, test, args.ratings_repeats))
            print(f"fold {fold}: biased_mf {ours[-1]}, Surprise SVD {theirs[-1]}", flush=True)
    return _figures(ours, theirs, args) | {"ratings_load_average": round(load_average, 2)}


def _surprise(base_file: Path, test_file: Path, repeats: int) -> dict[str, float]:
    command = [str(SURPRISE_PYTHON), str(PEERS / "run_surprise.py"), "--base", str(base_file), "--test", str(test_file)]
    output = subprocess.run([*command, "--repeats", str(repeats)], check=True, capture_output=True, text=True).stdout
    result = json.loads(output.strip().splitlines()[-1])
    return {"rmse": result["rmse"], "mae": result["mae"], "fit_seconds": result["fit_seconds"]}


def _biased_mf(ratings: np.ndarray, test: np.ndarray, repeats: int) -> dict[str, float]:
    """Fit on the base ratings (every user and item of ``ratings`` indexed), test on the others."""
    users, items = ratings[:, 0] - 1, ratings[:, 1] - 1
    n_users, n_items = int(users.max()) + 1, int(items.max()) + 1
    base = ~test
    data = InteractionData(
        n_users, n_items, users[base], items[base], ratings[base, 2].astype(np.float32), ratings[base, 3]
    )
    held_out = HeldOut.from_pairs(n_users, n_items, users[test], items[test], ratings[test, 2].astype(np.float32))
    times = []
    for _ in range(repeats):
        model = get_algorithm("biased_mf")()
        started = time.perf_counter()
        model.fit(data)
        times.append(time.perf_counter() - started)
    return {**rating_errors(model, held_out), "fit_seconds": min(times)}


def _figures(ours: list[dict], theirs: list[dict], args: argparse.Namespace) -> dict[str, Any]:
    def mean(results: list[dict], key: str) -> float:
        return float(np.mean([result[key] for result in results]))

    figures: dict[str, Any] = {"ratings_folds": len(ours), "ratings_threads": args.ratings_threads}
    for key in ("rmse", "mae", "fit_seconds"):
        figures[f"biased_mf_{key}"] = round(mean(ours, key), 4)
        figures[f"surprise_svd_{key}"] = round(mean(theirs, key), 4)
    figures["rmse_over_surprise"] = round(mean(ours, "rmse") / mean(theirs, "rmse"), 4)
    figures["mae_over_surprise"] = round(mean(ours, "mae") / mean(theirs, "mae"), 4)
    figures["fit_time_over_surprise"] = round(mean(ours, "fit_seconds") / mean(theirs, "fit_seconds"), 4)
    figures["target_rmse_over_surprise"] = TARGET_RATIO
    figures["target_fit_time_over_surprise"] = TARGET_RATIO
    return figures


def report_rows(figures: dict[str, Any]) -> Iterator[tuple[str, str, str, bool | None]]:
    if "rmse_over_surprise" not in figures:
        return
    folds = f"ml-100k, {figures['ratings_folds']} folds"
    rmse, target = figures["rmse_over_surprise"], figures["target_rmse_over_surprise"]
    ours, theirs = figures["biased_mf_rmse"], figures["surprise_svd_rmse"]
    yield (
        f"{folds}: biased_mf RMSE ÷ Surprise SVD's",
        f"{rmse:.3f}× ({ours:.4f} vs {theirs:.4f})",
        f"≤ {target:g}×",
        (rmse <= target),
    )
    mae, ours_mae, theirs_mae = figures["mae_over_surprise"], figures["biased_mf_mae"], figures["surprise_svd_mae"]
    yield "the same, MAE", f"{mae:.3f}× ({ours_mae:.4f} vs {theirs_mae:.4f})", "", None
    fit, fit_target = figures["fit_time_over_surprise"], figures["target_fit_time_over_surprise"]
    ours_fit, theirs_fit = figures["biased_mf_fit_seconds"], figures["surprise_svd_fit_seconds"]
    load = (
        f", load average {figures['ratings_load_average']:g} on a shared machine"
        if "ratings_load_average" in figures
        else ""
    )
    threads = f"{figures['ratings_threads']} torch thread{'s' if figures['ratings_threads'] > 1 else ''}"
    yield (
        f"the same, fit time ({threads}{load})",
        f"{fit:.3f}× ({ours_fit:.2f} s vs {theirs_fit:.2f} s)",
        f"≤ {fit_target:g}×",
        fit <= fit_target,
    )
