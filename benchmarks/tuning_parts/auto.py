"""``auto`` against RecBole 1.2.1's best baseline with its defaults, on the same split, in the same run.

For each dataset (MovieLens 100K and ml-latest-small, ratings >= 3, a random 8:1:1 split per scenario seed 2020):
the dataset is imported into a fresh database, a scenario asks for ``algorithm: auto`` with a wall-time budget of
``--auto-budget-minutes``, and its run goes through the platform's own code: the worker's training task, called
in-process on each queued run in turn (the broker is kombu's in-memory transport, so nothing leaves the process),
chooses and tunes exactly as on a worker. The scenario's split, which every candidate trains on, is handed to
RecBole (``run_recbole.py --split-in``), which trains and tests Pop, ItemKNN, BPR and EASE with its defaults on it,
in a process beside the auto run (the machine is shared, so auto's search gets less done in its budget). The
figure is auto's test NDCG@10 over the best of RecBole's four; ``auto_over_recbole_min`` is the smaller of the two
datasets' ratios (a dataset left out by ``--auto-datasets`` counts with its last run's).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from benchmarks.bench_database import benchmark_environment, database_recreate
from benchmarks.recbole_peer import PEERS, RECBOLE_PYTHON, SEED
from benchmarks.results_io import ROOT, read_results

DB_NAME = "recsys_bench_auto"
DATASETS = {"ml100k": "ml-100k", "mlsmall": "ml-latest-small"}
RECBOLE_MODELS = ("Pop", "ItemKNN", "BPR", "EASE")
TARGET_RATIO_MIN = 1.05
MIN_RATING = 3.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--auto-data", type=Path, default=ROOT.parent / "shared" / "data", help="auto: datasets")
    parser.add_argument(
        "--auto-datasets", default=",".join(DATASETS), help=f"auto: comma-separated, of {', '.join(DATASETS)}"
    )
    parser.add_argument("--auto-budget-minutes", type=float, default=15.0, help="auto: wall-time budget per dataset")
    parser.add_argument("--auto-threads", type=int, default=2, help="auto: torch threads on either side")


def run(args: argparse.Namespace) -> dict:
    keys = args.auto_datasets.split(",")
    if unknown := set(keys) - set(DATASETS):
        raise SystemExit(f"--auto-datasets: unknown {', '.join(sorted(unknown))} (known: {', '.join(DATASETS)})")
    subprocess.run(["bash", str(PEERS / "setup_recbole.sh")], check=True)
    _environment(args)
    figures: dict = {"auto_budget_minutes": args.auto_budget_minutes, "auto_threads": args.auto_threads}
    for key in keys:
        figures |= _dataset(key, args.auto_data / DATASETS[key], args)
    # Over both datasets: one left out of this run counts with its last run's ratio.
    last = read_results("tuning")
    ratios = [figures.get(f"auto_over_recbole_{key}", last.get(f"auto_over_recbole_{key}")) for key in DATASETS]
    figures["auto_over_recbole_min"] = round(min(ratio for ratio in ratios if ratio is not None), 4)
    figures["target_auto_over_recbole_min"] = TARGET_RATIO_MIN
    return figures


def _environment(args: argparse.Namespace) -> None:
    os.environ.update(
        benchmark_environment(
            DB_NAME,
            artifacts="bench-artifacts-auto",
            CELERY_BROKER_URL="memory://",  # tasks run in this process; nothing is sent to a shared broker
            RECSYS_ENV_FILE="",
        )
    )
    import django
    import torch

    django.setup()
    torch.set_num_threads(args.auto_threads)


def _fresh_database() -> None:
    from django.db import connections

    connections.close_all()
    database_recreate(DB_NAME)


def _dataset(key: str, folder: Path, args: argparse.Namespace) -> dict:
    from django.core.management import call_command

    print(f"==> auto on {folder.name}", file=sys.stderr, flush=True)
    shutil.rmtree(os.environ["RECSYS_ARTIFACT_ROOT"], ignore_errors=True)  # the last dataset's models
    _fresh_database()
    call_command("migrate", verbosity=0)
    call_command("import_movielens", str(folder), verbosity=0)
    run = _auto_run_create(key, budget_seconds=round(args.auto_budget_minutes * 60))
    with tempfile.TemporaryDirectory(prefix="auto-split-") as scratch:
        split_path, sizes = _split_write(run, Path(scratch) / "split.npz")
        peer = _recbole_start(split_path, args.auto_threads)
        run = _auto_run_drive(run.pk)
        recbole = _recbole_finish(peer)
    chosen = run.chosen_run
    if chosen is None:
        raise RuntimeError(f"the auto run on {folder.name} ended {run.status}: {run.error}")
    if recbole["split_sizes"] != sizes or chosen.split.get("test_pairs") not in (None, sizes["test"]):
        raise RuntimeError(f"RecBole read another split: {recbole['split_sizes']} against ours {sizes}")
    peers = {model: recbole["models"][model]["test"]["ndcg@10"] for model in RECBOLE_MODELS}
    best_model = max(peers, key=peers.__getitem__)
    best = peers[best_model]
    ours = chosen.metrics["ndcg@10"]
    print(f"auto {chosen.algorithm} {ours:.4f} against RecBole {best_model} {best:.4f}", file=sys.stderr)
    print(run.selection["reason"], file=sys.stderr, flush=True)
    figures = {
        f"auto_{key}_ndcg10": round(ours, 6),
        f"auto_{key}_winner": chosen.algorithm,
        f"auto_{key}_candidates": len(run.selection["candidates"]),
        f"auto_{key}_seconds": run.selection["budget"]["seconds_used"],
        **{f"recbole_{key}_{model.lower()}_ndcg10": value for model, value in peers.items()},
        f"recbole_{key}_best": best_model,
        f"auto_over_recbole_{key}": round(ours / best, 4),
    }
    print(json.dumps(figures), file=sys.stderr, flush=True)
    return figures


def _auto_run_create(key: str, *, budget_seconds: int):
    from scenarios.services import scenario_create
    from training.services import training_run_create

    scenario = scenario_create(
        data={
            "slug": f"auto-{key}",
            "name": f"auto on {key}",
            "min_value": MIN_RATING,
            "split": "random",
            "validation_share": 0.1,
            "test_share": 0.1,
            "k_list": [10],
            "seed": SEED,
            "compute_queue": "cpu",
            "algorithm": "auto",
            "hyperparameters": {"max_seconds": budget_seconds},
        }
    )
    return training_run_create(scenario=scenario)


def _auto_run_drive(run_id: int):
    """Execute the queued runs as a worker would until the auto run has ended; return it."""
    from training.models import TrainingRun

    for queued in _queued_runs(run_id):
        _worker_task(queued)
    return TrainingRun.objects.select_related("chosen_run").get(pk=run_id)


def _queued_runs(auto_run_id: int) -> Iterator[int]:
    """The queued runs in the order a worker would take them, until the auto run has ended."""
    from training.models import RunStatus, TrainingRun

    while TrainingRun.objects.filter(pk=auto_run_id, status__in=(RunStatus.QUEUED, RunStatus.RUNNING)).exists():
        queued = TrainingRun.objects.filter(status=RunStatus.QUEUED).order_by("pk").values_list("pk", flat=True)
        if not queued:
            raise RuntimeError(f"auto run {auto_run_id} waits on no queued run")
        yield queued[0]


def _worker_task(run_id: int) -> None:
    """What a worker does with the run's message: the training task itself, run here."""
    from training.tasks import training_run_task

    started = time.perf_counter()
    training_run_task.apply(args=(run_id,), queue="cpu")
    from training.models import TrainingRun

    run = TrainingRun.objects.get(pk=run_id)
    print(f"  run {run.pk} {run.algorithm}: {run.status} in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def _split_write(run, path: Path) -> tuple[Path, dict[str, int]]:
    """The run's train / validation / test pairs as external ids, for RecBole's ``--split-in``."""
    from catalog.models import EndUser, Item
    from training.groups import run_data_load

    prepared = run_data_load(run=run)
    training, split = prepared.training, prepared.split
    users = dict(EndUser.objects.filter(pk__in=training.user_ids.tolist()).values_list("pk", "external_id"))
    items = dict(Item.objects.filter(pk__in=training.item_ids.tolist()).values_list("pk", "external_id"))
    user_text = np.array([users[int(pk)] for pk in training.user_ids])
    item_text = np.array([items[int(pk)] for pk in training.item_ids])
    arrays = {"train_users": user_text[split.train.users], "train_items": item_text[split.train.items]}
    for part, held in (("valid", split.validation), ("test", split.test)):
        held_users = np.repeat(np.arange(held.n_users), np.diff(held.indptr))
        arrays[f"{part}_users"], arrays[f"{part}_items"] = user_text[held_users], item_text[held.items]
    np.savez_compressed(path, **arrays)
    return path, {part: len(arrays[f"{part}_users"]) for part in ("train", "valid", "test")}


def _recbole_start(split_path: Path, threads: int) -> subprocess.Popen:
    """RecBole on the split, beside the auto run (the split is drawn before any candidate trains; both sides share
    the machine, which only slows auto's search within its wall-time budget)."""
    command = [str(RECBOLE_PYTHON), str(PEERS / "run_recbole.py"), "--split-in", str(split_path)]
    command += ["--models", ",".join(RECBOLE_MODELS), "--repeats", "1", "--threads", str(threads)]
    print(f"==> RecBole {', '.join(RECBOLE_MODELS)} on the same split", file=sys.stderr, flush=True)
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def _recbole_finish(peer: subprocess.Popen) -> dict:
    output, _ = peer.communicate()
    if peer.returncode:
        raise RuntimeError(f"RecBole failed (exit {peer.returncode})")
    return json.loads(output.strip().splitlines()[-1])


def report_rows(figures: dict) -> Iterator[tuple[str, str, str, bool | None]]:
    if "auto_over_recbole_min" not in figures:
        return
    budget = figures.get("auto_budget_minutes")
    for key, name in DATASETS.items():
        if f"auto_over_recbole_{key}" in figures:
            yield (
                f"auto ({budget:g} min budget) on {name}: test NDCG@10 against RecBole's best default baseline",
                f"{figures[f'auto_{key}_ndcg10']:.4f} ({figures[f'auto_{key}_winner']}) against "
                f"{figures[f'recbole_{key}_' + figures[f'recbole_{key}_best'].lower() + '_ndcg10']:.4f} "
                f"({figures[f'recbole_{key}_best']}): {figures[f'auto_over_recbole_{key}']:.3f}×",
                "",
                None,
            )
    ratio = figures["auto_over_recbole_min"]
    measured = [name for key, name in DATASETS.items() if f"auto_over_recbole_{key}" in figures]
    yield (
        f"auto over RecBole's best default baseline, the smallest ratio of {', '.join(measured)} "
        "(`auto_over_recbole_min`)",
        f"{ratio:.3f}×",
        f"≥ {figures['target_auto_over_recbole_min']:g}×",
        ratio >= figures["target_auto_over_recbole_min"],
    )
