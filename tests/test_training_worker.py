"""Training through the real broker and a real Celery worker process."""

import json
import os
import re
import signal
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from recsys_site.celery import app
from tests.conftest import wait_until
from tests.factories import clustered_catalog, scenario
from training.models import RunStatus, TrainingRun
from training.services import training_run_create, training_runs_reap

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]
# Many short epochs: long enough to act on a running run, each epoch far below a second.
SLOW = {"epochs": 400, "early_stopping_patience": 400, "batch_size": 64}


def _run(run_id: int) -> TrainingRun:
    return TrainingRun.objects.get(pk=run_id)


def test_a_scenario_trains_end_to_end_through_the_api(celery_worker, api):
    clustered_catalog()
    api.post("/api/v1/scenarios/", {"slug": "movies", "name": "Movies", "algorithm": "ease"}, format="json")

    created = api.post("/api/v1/scenarios/movies/runs/", {}, format="json")

    assert created.status_code == 201 and created.json()["status"] == "queued"
    run_id = created.json()["id"]
    wait_until(lambda: _run(run_id).is_finished, timeout=120)
    body = api.get(f"/api/v1/runs/{run_id}/").json()
    assert body["status"] == "succeeded", body["error"]
    assert body["metrics"]["ndcg@10"] > 0 and body["task_id"] and body["device"] == "cpu"
    assert body["artifact_sha256"] and body["progress"] == 1.0
    listed = api.get("/api/v1/scenarios/movies/runs/", {"status": "succeeded"}).json()
    assert [run["id"] for run in listed["results"]] == [run_id]


def test_cancelling_mid_training_ends_cancelled_within_one_epoch(celery_worker, api):
    clustered_catalog()
    run = training_run_create(scenario=scenario(algorithm="bpr", hyperparameters=SLOW))
    wait_until(lambda: (_run(run.pk).epoch or 0) >= 2, timeout=120)

    assert api.post(f"/api/v1/runs/{run.pk}/cancel/").status_code == 200
    # Read once the flag is stored: the epochs finished so far; the flag is checked at the end of the next one.
    finished_when_flagged = _run(run.pk).epoch

    wait_until(lambda: _run(run.pk).is_finished, timeout=60)
    cancelled = _run(run.pk)
    assert cancelled.status == RunStatus.CANCELLED
    assert cancelled.epoch <= finished_when_flagged + 1 < SLOW["epochs"]


def test_a_killed_worker_process_ends_failed_after_the_reaper(celery_worker):
    clustered_catalog()
    run = training_run_create(scenario=scenario(algorithm="bpr", hyperparameters=SLOW))
    wait_until(lambda: (_run(run.pk).epoch or 0) >= 1, timeout=120)
    pid = int(_run(run.pk).worker.rsplit(":", 1)[1])

    os.kill(pid, signal.SIGKILL)  # the pool process running the task; the heartbeat thread dies with it

    wait_until(lambda: training_runs_reap(stale_after=timedelta(seconds=3)), timeout=30)
    failed = _run(run.pk)
    assert failed.status == RunStatus.FAILED and "worker lost" in failed.error
    assert app.control.ping(timeout=2)  # the worker itself replaced its pool process


def _processed(task_name: str) -> int:
    stats = app.control.inspect(timeout=2).stats() or {}
    return sum(entry.get("total", {}).get(task_name, 0) for entry in stats.values())


def test_a_run_created_in_a_rolled_back_transaction_sends_nothing(celery_worker):
    clustered_catalog()
    movies = scenario()
    before = _processed("training.run")

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        training_run_create(scenario=movies)
        raise Rollback
    sent = training_run_create(scenario=movies)  # committed: dispatched after the rolled-back one would have been

    wait_until(lambda: _run(sent.pk).is_finished, timeout=120)
    wait_until(lambda: _processed("training.run") > before, timeout=10)
    assert _processed("training.run") - before == 1
    assert TrainingRun.objects.count() == 1


def test_the_train_command_waits_and_prints_metrics(celery_worker):
    clustered_catalog()
    scenario()
    out, err = StringIO(), StringIO()

    call_command(
        "train",
        "movies",
        "--algorithm",
        "item_knn",
        "--param",
        "k=20",
        "--wait",
        "--timeout",
        "120",
        stdout=out,
        stderr=err,
    )

    assert '"ndcg@10"' in out.getvalue() and "succeeded" in out.getvalue()
    assert "queued run" in err.getvalue()
    run = TrainingRun.objects.get()
    assert run.params["k"] == 20
    summary = json.loads(out.getvalue())
    assert summary["seconds"] > 0 and set(summary["timings"]) >= {"load", "fit", "evaluate"}
    assert "kept_epoch" in summary and summary["seed"] == run.seed
    listing = StringIO()
    call_command("runs", "movies", stdout=listing)
    assert "item_knn" in listing.getvalue() and "succeeded" in listing.getvalue()


def test_the_train_command_fine_tunes_a_parent_and_runs_lists_it(celery_worker):
    clustered_catalog()
    scenario(algorithm="gru4rec", hyperparameters={"epochs": 2, "embedding_size": 16, "hidden_size": 16})
    first = StringIO()
    call_command("train", "movies", "--seed", "7", "--wait", "--timeout", "120", stdout=first, stderr=StringIO())
    parent = json.loads(first.getvalue())["run"]
    out = StringIO()

    call_command(
        "train", "movies", "--parent", str(parent), "--wait", "--timeout", "120", stdout=out, stderr=StringIO()
    )

    child = json.loads(out.getvalue())
    assert child["parent"] == parent and child["epochs"] == 2 and child["kept_epoch"] in (1, 2)
    listing = StringIO()
    call_command("runs", "movies", stdout=listing)
    header, child_line, parent_line = listing.getvalue().splitlines()[:3]
    assert header.split()[5:8] == ["duration", "seed", "parent"]
    assert child_line.split()[7] == str(parent) and parent_line.split()[6] == "7"
    assert re.fullmatch(r"\d+s|\d+m\d\ds", child_line.split()[5])


def test_the_train_command_refuses_an_unknown_parent():
    scenario()
    with pytest.raises(CommandError, match="--parent 999: no such run"):
        call_command("train", "movies", "--parent", "999", stderr=StringIO())
