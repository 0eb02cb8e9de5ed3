"""A benchmark database holding one MovieLens folder, built through the platform's importer and dropped after.

The parts of ``benchmarks.tuning`` that train through the platform use it: Django is set up once per process on
the database ``recsys_bench_tuning``, which each use creates afresh and drops again, as ``benchmarks.live`` does.
Runs execute in this process (``training_run_execute``, what a worker calls); the broker is kombu's in-memory
transport, so the messages that queueing a run sends reach no worker of another database.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.bench_database import benchmark_database
from benchmarks.results_io import ROOT

DB_NAME = "recsys_bench_tuning"
DATA = ROOT.parent / "shared" / "data"
MIN_RATING = 3.0
SPLIT = {"split": "random", "validation_share": 0.1, "test_share": 0.1, "min_value": MIN_RATING}


@contextlib.contextmanager
def movielens_database(folder: Path) -> Iterator[None]:
    """A fresh database holding ``folder``'s films, users and ratings (``manage.py import_movielens``)."""
    with benchmark_database(DB_NAME, artifacts="bench-artifacts-tuning", CELERY_BROKER_URL="memory://"):
        import django

        django.setup()
        from django.core.management import call_command

        from catalog.importers import movielens_import

        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        report = movielens_import(folder=folder)
        print(f"{folder.name}: imported in {time.perf_counter() - started:.1f} s ({report.source})", flush=True)
        yield


def scenario_add(slug: str, **fields: Any):
    """A scenario of every rating ≥ 3, split at random per user 8:1:1 (validation for tuning and blends)."""
    from scenarios.services import scenario_create

    return scenario_create(data={"slug": slug, "name": slug, **SPLIT, **fields})


def run_execute(run) -> Any:
    """Execute a queued run here, as a worker would (trials also advance their study); the run, re-read."""
    from training.models import TrainingRun
    from training.services import training_run_execute
    from training.tuning.studies import study_trial_finished

    try:
        training_run_execute(run_id=run.pk, device="cpu")
    finally:
        study_trial_finished(run_id=run.pk)
    return TrainingRun.objects.get(pk=run.pk)


def run_default(scenario, algorithm: str, *, members: tuple = ()) -> Any:
    """Train ``algorithm`` with its defaults on ``scenario``; the finished run."""
    from training.services import training_run_create

    run = run_execute(training_run_create(scenario=scenario, algorithm=algorithm, members=members))
    took = sum((run.timings or {}).values())
    print(f"  {algorithm}: {run.status} in {took:.1f} s, test ndcg@10 {ndcg_on_test(run):.4f}", flush=True)
    return run


def ndcg_on_test(run) -> float:
    return float((run.metrics or {}).get("ndcg@10", 0.0))
