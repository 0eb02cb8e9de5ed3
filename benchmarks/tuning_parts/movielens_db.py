"""A benchmark database holding one MovieLens folder, built through the platform's importer and dropped after.

The parts of ``benchmarks.tuning`` that train through the platform use it: Django is set up once per process on
the database ``recsys_bench_tuning``, which each use creates afresh and drops again, as ``benchmarks.live`` does.
Runs execute in this process (``training_run_execute``, what a worker calls); the broker is kombu's in-memory
transport, so the messages that queueing a run sends reach no worker of another database.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.results_io import ROOT

DB_NAME = "recsys_bench_tuning"
DATA = ROOT.parent / "shared" / "data"
MIN_RATING = 3.0
SPLIT = {"split": "random", "validation_share": 0.1, "test_share": 0.1, "min_value": MIN_RATING}


def _admin_url() -> str:
    return os.environ.get("BENCH_DATABASE_ADMIN_URL", "postgres://postgres@localhost:5432/postgres")


def _recreate(admin_url: str, *, create: bool) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        if create:
            connection.execute(f'CREATE DATABASE "{DB_NAME}"')


def _django_setup(admin_url: str) -> None:
    os.environ.update(
        DATABASE_URL=admin_url.rsplit("/", 1)[0] + f"/{DB_NAME}",
        DJANGO_SETTINGS_MODULE="recsys_site.settings",
        DJANGO_SECRET_KEY="benchmark-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        DJANGO_SECURE_SSL_REDIRECT="0",
        DJANGO_DEBUG="0",
        LOG_LEVEL="WARNING",
        CELERY_BROKER_URL="memory://",
        RECSYS_ARTIFACT_ROOT=str(ROOT / "var" / "bench-artifacts-tuning"),
    )
    import django

    django.setup()


@contextlib.contextmanager
def movielens_database(folder: Path) -> Iterator[None]:
    """A fresh database holding ``folder``'s films, users and ratings (``manage.py import_movielens``)."""
    admin_url = _admin_url()
    _recreate(admin_url, create=True)
    _django_setup(admin_url)
    from django.core.management import call_command
    from django.db import connections

    from catalog.importers import movielens_import

    try:
        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        report = movielens_import(folder=folder)
        print(f"{folder.name}: imported in {time.perf_counter() - started:.1f} s ({report.source})", flush=True)
        yield
    finally:
        connections.close_all()
        _recreate(admin_url, create=False)


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
