"""Real faults against a private redis-server, real Celery worker and beat processes, and the real PostgreSQL:
every run ends, none is lost, and no acknowledged event is lost.

The beat process runs the sweeper (``training.beat``) with short timings (``SWEEPER_ENV``) so each case ends in
seconds; the production defaults only make the same steps slower.
"""

import http.client
import json
import time
from datetime import timedelta

import pytest

from accounts.services import api_token_create
from catalog.models import Interaction
from recsys_site.celery import app
from tests.conftest import wait_until
from tests.factories import clustered_catalog, scenario
from tests.faults import (
    CeleryProcess,
    PrivateRedis,
    WebServer,
    broker,
    record,
    terminate_other_backends,
    terminate_own_backend,
    wait_for_consumer,
)
from training.dispatch import TRAINING_RUN
from training.models import RunStatus, TrainingRun
from training.services import training_run_create

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

STALE_SECONDS, SWEEP_SECONDS, NO_CONSUMER_SECONDS = 5, 1, 30
SWEEPER_ENV = {
    "RECSYS_RUN_STALE_SECONDS": str(STALE_SECONDS),
    "RECSYS_SWEEP_SECONDS": str(SWEEP_SECONDS),
    "RECSYS_DISPATCH_LOST_SECONDS": "3",
    "RECSYS_QUEUE_NO_CONSUMER_SECONDS": str(NO_CONSUMER_SECONDS),
    "RECSYS_HEARTBEAT_SECONDS": "1",
}
# Many short epochs: long enough to inject a fault mid-training, each epoch far below a second.
LONG = {"epochs": 400, "early_stopping_patience": 400, "batch_size": 64}
MEDIUM = {"epochs": 120, "early_stopping_patience": 120, "batch_size": 64}


@pytest.fixture(scope="module")
def redis_server(django_db_setup, django_db_blocker):
    """A private broker, used by this process and by a beat process (the sweeper) for the whole module."""
    server = PrivateRedis()
    server.start()
    beat = CeleryProcess("beat", broker_url=server.url, extra_env=SWEEPER_ENV)
    try:
        with broker(server.url):
            beat.start()
            yield server
    finally:
        beat.stop()
        server.stop(fault=False)


@pytest.fixture
def worker(redis_server):
    """A worker of the ``cpu`` queue on the private broker; killed at the end of the test if still alive."""
    process = CeleryProcess("worker", broker_url=redis_server.url, extra_env=SWEEPER_ENV).start()
    try:
        wait_for_consumer("cpu")
        yield process
    finally:
        process.stop()


def _run(run_id: int) -> TrainingRun:
    return TrainingRun.objects.get(pk=run_id)


def _ended(run_id: int, *, timeout: float) -> TrainingRun:
    """Wait for the run to finish; record whether it did (a run still queued or running is stuck)."""
    try:
        wait_until(lambda: _run(run_id).is_finished, timeout=timeout)
    finally:
        run = _run(run_id)
        record("run", id=run_id, status=run.status, stuck=not run.is_finished)
    return run


def _training(run_id: int, epochs: int = 1) -> None:
    wait_until(lambda: (_run(run_id).epoch or 0) >= epochs, timeout=180)


def test_a_worker_killed_mid_training_with_no_worker_left_ends_failed_within_the_stale_time(worker):
    clustered_catalog()
    run = training_run_create(scenario=scenario(algorithm="bpr", hyperparameters=LONG))
    _training(run.pk)

    worker.kill()  # SIGKILL to the worker and its pool: no worker is left, only beat
    killed_at = time.monotonic()

    failed = _ended(run.pk, timeout=60)
    assert failed.status == RunStatus.FAILED and "worker lost" in failed.error
    # The last heartbeat came up to a beat before the kill; then the stale time and one sweep (plus slack for a
    # loaded machine).
    assert time.monotonic() - killed_at < STALE_SECONDS + SWEEP_SECONDS + 15


def test_a_run_created_while_redis_is_down_is_dispatched_once_it_returns(worker, redis_server, api):
    clustered_catalog()
    scenario()
    redis_server.stop()

    created = api.post("/api/v1/scenarios/movies/runs/", {}, format="json")
    assert created.status_code == 201
    run_id = created.json()["id"]
    assert _run(run_id).dispatched_at is None
    redis_server.start()

    done = _ended(run_id, timeout=180)
    assert done.status == RunStatus.SUCCEEDED, done.error
    assert done.dispatch_attempts == 1


def test_restarting_redis_with_a_run_queued_loses_no_run(redis_server):
    clustered_catalog()
    run = training_run_create(scenario=scenario())  # no worker yet: the message waits in Redis
    first_task = _run(run.pk).task_id
    assert first_task

    redis_server.restart()  # without persistence: the waiting message is gone
    worker = CeleryProcess("worker", broker_url=redis_server.url, extra_env=SWEEPER_ENV).start()
    try:
        done = _ended(run.pk, timeout=180)
    finally:
        worker.stop()
    assert done.status == RunStatus.SUCCEEDED, done.error
    assert done.dispatch_attempts == 2 and done.task_id != first_task


def test_restarting_redis_while_a_run_trains_loses_no_run(worker, redis_server):
    clustered_catalog()
    run = training_run_create(scenario=scenario(algorithm="bpr", hyperparameters=MEDIUM))
    _training(run.pk)

    redis_server.restart()  # the reserved message is lost with it

    done = _ended(run.pk, timeout=240)
    assert done.status == RunStatus.SUCCEEDED, done.error


def test_cutting_the_workers_database_connections_mid_training_the_run_finishes(worker):
    clustered_catalog()
    run = training_run_create(scenario=scenario(algorithm="bpr", hyperparameters=MEDIUM))
    _training(run.pk, epochs=2)

    assert terminate_other_backends() >= 1  # the worker's sessions (training and heartbeat) and beat's

    done = _ended(run.pk, timeout=240)
    assert done.status == RunStatus.SUCCEEDED, done.error
    assert done.epoch == MEDIUM["epochs"] or done.kept_epoch is not None


def _processed(task_name: str) -> int:
    stats = app.control.inspect(timeout=2).stats() or {}
    return sum(entry.get("total", {}).get(task_name, 0) for entry in stats.values())


def test_the_same_task_delivered_twice_does_nothing(worker):
    clustered_catalog()
    run = training_run_create(scenario=scenario())
    app.send_task(TRAINING_RUN, args=(run.pk,), queue="cpu")  # a second delivery while the first waits
    record("fault", what="task delivered twice")
    done = _ended(run.pk, timeout=180)
    wait_until(lambda: _processed(TRAINING_RUN) >= 2, timeout=60)
    before = TrainingRun.objects.filter(pk=run.pk).values().get()

    app.send_task(TRAINING_RUN, args=(run.pk,), queue="cpu")  # and a third after it finished
    record("fault", what="task delivered again")
    wait_until(lambda: _processed(TRAINING_RUN) >= 3, timeout=60)

    assert done.status == RunStatus.SUCCEEDED
    assert TrainingRun.objects.filter(pk=run.pk).values().get() == before


def test_a_run_for_a_queue_without_consumer_fails_with_the_reason(worker):
    clustered_catalog()
    run = training_run_create(scenario=scenario(), queue="gpu")  # the worker consumes cpu only

    failed = _ended(run.pk, timeout=NO_CONSUMER_SECONDS + 60)

    assert failed.status == RunStatus.FAILED and "no worker consumed the gpu queue" in failed.error
    assert failed.finished_at - failed.created_at >= timedelta(seconds=NO_CONSUMER_SECONDS)


def _event_batch(ids: str, size: int, *, users: tuple[str, int], items: tuple[str, int]) -> list[dict]:
    """``size`` events at one time, with ids ``ids`` followed by their number; users and items (a prefix and how
    many) take turns."""
    (user, n_users), (item, n_items) = users, items
    return [
        {
            "user": f"{user}{n % n_users}",
            "item": f"{item}{n % n_items}",
            "occurred_at": "2024-01-01T00:00:00Z",
            "event_id": f"{ids}{n}",
        }
        for n in range(size)
    ]


def test_events_acknowledged_across_dropped_web_connections_are_all_stored(api):
    acknowledged: list[str] = []
    for batch in range(10):
        events = _event_batch(f"e{batch}-", 50, users=("u", 7), items=("i", 11))
        if batch % 2:
            terminate_own_backend()
        for _ in range(5):  # a client that honours 503 and Retry-After
            response = api.post("/api/v1/interactions/", {"events": events}, format="json")
            assert response.status_code in (201, 503), response.content
            if response.status_code == 201:
                acknowledged += [event["event_id"] for event in events]
                break
            assert response["Retry-After"]
    stored = set(Interaction.objects.filter(event_id__in=acknowledged).values_list("event_id", flat=True))
    record("events", acknowledged=len(acknowledged), lost=len(set(acknowledged) - stored))

    assert len(acknowledged) == 500 and stored == set(acknowledged)


def _post_until_acknowledged(web: WebServer, token: str, events: list[dict]) -> int:
    """POST a batch as a careful client does: on a dropped connection or a 503, the same batch again (its event
    ids make a replay add nothing). Returns the number of tries; a 500 fails the test."""
    body = json.dumps({"events": events})
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    for attempt in range(1, 30):
        connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=30)
        try:
            connection.request("POST", "/api/v1/interactions/", body=body, headers=headers)
            response = connection.getresponse()
            status, text = response.status, response.read()
        except (ConnectionError, http.client.HTTPException, TimeoutError):
            time.sleep(0.3)
            continue
        finally:
            connection.close()
        assert status in (201, 503), text[:500]
        if status == 201:
            return attempt
        time.sleep(0.3)
    raise AssertionError("the batch was never acknowledged")


def test_events_sent_to_a_web_server_whose_workers_and_connections_are_killed_are_all_stored(redis_server, admin_user):
    _, token = api_token_create(user=admin_user, scope="full")
    web = WebServer(broker_url=redis_server.url).start()
    acknowledged: list[str] = []
    try:
        for batch in range(24):
            if batch % 4 == 1:
                web.kill_a_worker()
            elif batch % 4 == 3:
                terminate_other_backends()  # gunicorn's kept connections among them
            events = _event_batch(f"w{batch}-", 200, users=("w", 13), items=("j", 17))
            _post_until_acknowledged(web, token, events)
            acknowledged += [event["event_id"] for event in events]
    finally:
        web.stop()
    stored = set(Interaction.objects.filter(event_id__in=acknowledged).values_list("event_id", flat=True))
    record("events", acknowledged=len(acknowledged), lost=len(set(acknowledged) - stored))

    assert stored == set(acknowledged) and Interaction.objects.filter(event_id__startswith="w").count() == 4800
