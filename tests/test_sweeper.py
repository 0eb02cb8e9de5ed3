"""The sweeper and the outbox on the real PostgreSQL and Redis: sends that failed or were lost are sent again,
lost runs and jobs end, and a database or broker that is away answers 503 (the worker-level faults are in
test_reliability_faults.py)."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from recsys_site.celery import app
from scenarios.models import Scenario
from tests.conftest import wait_until
from tests.factories import clustered_catalog, scenario
from tests.faults import PrivateRedis, broker, free_port, terminate_other_backends, terminate_own_backend
from tests.test_groups import _group
from training.broker import broker_task_ids
from training.embeddings_service import embedding_job_create
from training.matrix import matrix_job_create
from training.models import EmbeddingJob, MatrixJob, RunStatus, TrainingRun
from training.progress import Heartbeat
from training.resilience import with_database_retry
from training.services import training_run_create
from training.sweeper import QueueWatch, _fail_unconsumed, jobs_reap, sweep

pytestmark = pytest.mark.django_db(transaction=True)
LONG_AGO = timedelta(minutes=10)


@pytest.fixture
def redis_broker():
    """A private, empty broker (no worker consumes it), used by this process for the test."""
    server = PrivateRedis()
    server.start()
    with broker(server.url):
        yield server
    server.stop()


def _age(model, row_id: int, **fields) -> None:
    """Move a row's timestamps back, as if it had waited that long."""
    old = timezone.now() - LONG_AGO
    model.objects.filter(pk=row_id).update(created_at=old, **{name: old for name in fields})


def test_a_run_created_while_the_broker_is_down_is_committed_then_sent_by_the_sweeper(api, redis_broker):
    clustered_catalog()
    scenario()
    with broker(f"redis://127.0.0.1:{free_port()}/0"):  # nothing listens there
        started = time.monotonic()
        created = api.post("/api/v1/scenarios/movies/runs/", {}, format="json")
        took = time.monotonic() - started

    assert created.status_code == 201 and took < 5
    run = TrainingRun.objects.get(pk=created.json()["id"])
    assert (run.status, run.dispatched_at, run.dispatch_attempts) == (RunStatus.QUEUED, None, 0)
    _age(TrainingRun, run.pk)

    assert run.pk in sweep(watch=QueueWatch()).redispatched
    run.refresh_from_db()
    assert run.dispatched_at is not None and run.dispatch_attempts == 1
    assert run.task_id in broker_task_ids(["cpu"])


def test_a_message_waiting_in_its_queue_is_not_sent_again(redis_broker):
    clustered_catalog()
    run = training_run_create(scenario=scenario())
    _age(TrainingRun, run.pk, dispatched_at=True)

    report = sweep(watch=QueueWatch())

    assert report.redispatched == [] and report.failed_lost == []
    assert TrainingRun.objects.get(pk=run.pk).dispatch_attempts == 1


def test_a_lost_message_is_sent_again_then_the_run_fails_after_the_last_attempt(redis_broker, settings):
    settings.RECSYS_DISPATCH_MAX_ATTEMPTS = 2
    clustered_catalog()
    run = training_run_create(scenario=scenario())
    first_task = TrainingRun.objects.get(pk=run.pk).task_id
    for attempt in (1, 2):
        app.control.purge()  # the broker loses every waiting message, as a restart without persistence does
        _age(TrainingRun, run.pk, dispatched_at=True)
        report = sweep(watch=QueueWatch())
        if attempt == 1:
            assert report.redispatched == [run.pk]
    run.refresh_from_db()

    assert run.task_id != first_task and run.dispatch_attempts == 2
    assert run.status == RunStatus.FAILED and "lost 2 times" in run.error


# redis_broker before settings: the settings fixture's override must be undone before the broker is pointed back,
# or the restored broker address lands in the override and is dropped with it.
def test_runs_for_a_queue_without_consumer_fail_after_the_wait(redis_broker, settings):
    settings.RECSYS_QUEUE_NO_CONSUMER_SECONDS = 60
    clustered_catalog()
    gpu_run = training_run_create(scenario=scenario(), queue="gpu")
    cpu_run = training_run_create(scenario=gpu_run.scenario, queue="cpu")
    _age(TrainingRun, gpu_run.pk)
    _age(TrainingRun, cpu_run.pk)
    watch = QueueWatch()
    watch.update({"cpu"}, timezone.now() - LONG_AGO)

    failed = _fail_unconsumed(TrainingRun, watch.abandoned(timezone.now()), now=timezone.now())

    assert failed == [gpu_run.pk]
    assert "no worker consumed the gpu queue" in TrainingRun.objects.get(pk=gpu_run.pk).error
    assert TrainingRun.objects.get(pk=cpu_run.pk).status == RunStatus.QUEUED


def test_a_queue_that_regains_a_consumer_is_no_longer_abandoned():
    watch = QueueWatch()
    watch.update(set(), timezone.now() - LONG_AGO)
    assert sorted(watch.abandoned(timezone.now())) == ["cpu", "gpu"]

    watch.update({"gpu"}, timezone.now())

    assert watch.abandoned(timezone.now()) == ["cpu"]


def test_an_embedding_job_without_heartbeat_is_reaped_and_a_beating_one_is_not():
    lost, alive = (embedding_job_create(dispatch=False) for _ in range(2))
    old = timezone.now() - LONG_AGO
    EmbeddingJob.objects.filter(pk=lost.pk).update(status=RunStatus.RUNNING, started_at=old, heartbeat_at=old)
    EmbeddingJob.objects.filter(pk=alive.pk).update(status=RunStatus.RUNNING, started_at=old)
    with Heartbeat(EmbeddingJob, alive.pk):
        wait_until(lambda: (EmbeddingJob.objects.get(pk=alive.pk).heartbeat_at or old) > old, timeout=10)

    assert jobs_reap(EmbeddingJob) == [lost.pk]
    assert "worker lost" in EmbeddingJob.objects.get(pk=lost.pk).error
    assert EmbeddingJob.objects.get(pk=alive.pk).status == RunStatus.RUNNING


def test_a_slice_refresh_asked_while_the_broker_was_down_is_sent_by_the_sweeper(api, redis_broker):
    with broker(f"redis://127.0.0.1:{free_port()}/0"):
        created = api.post("/api/v1/scenarios/", {"slug": "all", "name": "All"}, format="json")
    assert created.status_code == 201
    movies = Scenario.objects.get(slug="all")
    assert movies.slice_requested_at is not None and movies.slice_dispatched_at is None
    Scenario.objects.filter(pk=movies.pk).update(slice_requested_at=timezone.now() - LONG_AGO)

    assert sweep(watch=QueueWatch()).slices_sent == [movies.pk]
    assert Scenario.objects.get(pk=movies.pk).slice_dispatched_at is not None


def test_scenario_edit_and_slice_refresh_answer_normally_with_the_broker_down(api):
    api.post("/api/v1/scenarios/", {"slug": "all", "name": "All"}, format="json")
    with broker(f"redis://127.0.0.1:{free_port()}/0"):
        edited = api.patch("/api/v1/scenarios/all/", {"name": "Everything"}, format="json")
        refreshed = api.post("/api/v1/scenarios/all/slice/refresh/")
        job = api.post("/api/v1/items/embeddings/refresh/")

    assert (edited.status_code, refreshed.status_code) == (200, 202)
    assert Scenario.objects.get(slug="all").name == "Everything"
    assert job.status_code == 202 and EmbeddingJob.objects.get().dispatched_at is None


def test_a_dropped_web_database_connection_answers_503_then_success(api):
    assert api.get("/api/v1/scenarios/").status_code == 200
    terminate_own_backend()

    dropped = api.get("/api/v1/scenarios/")
    again = api.get("/api/v1/scenarios/")

    assert dropped.status_code == 503 and dropped["Retry-After"].isdigit()
    assert dropped.json()["detail"] and dropped.json()["errors"] == {}
    assert again.status_code == 200


def test_a_write_retried_across_a_dropped_connection_succeeds():
    clustered_catalog()
    run = training_run_create(scenario=scenario())
    terminate_own_backend()

    updated = with_database_retry(
        lambda: TrainingRun.objects.filter(pk=run.pk).update(phase="loading"), what="test", attempts=3
    )

    assert updated == 1


def test_the_heartbeat_thread_survives_a_dropped_connection():
    clustered_catalog()
    run = training_run_create(scenario=scenario())
    TrainingRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, heartbeat_at=timezone.now() - LONG_AGO)
    with Heartbeat(TrainingRun, run.pk) as heartbeat:
        wait_until(lambda: TrainingRun.objects.get(pk=run.pk).heartbeat_at > timezone.now() - LONG_AGO / 2)
        assert terminate_other_backends() >= 1  # the heartbeat thread's session among them
        cut_at = timezone.now()

        wait_until(lambda: TrainingRun.objects.get(pk=run.pk).heartbeat_at > cut_at + timedelta(seconds=1), timeout=15)
        assert heartbeat.thread.is_alive()


def test_a_sweep_with_the_broker_down_still_reaps():
    clustered_catalog()
    run = training_run_create(scenario=scenario())
    TrainingRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, heartbeat_at=timezone.now() - LONG_AGO)
    with broker(f"redis://127.0.0.1:{free_port()}/0"):
        report = sweep(watch=QueueWatch())

    assert report.reaped_runs == [run.pk]


def test_a_broker_that_cannot_say_who_consumes_abandons_no_queue():
    watch = QueueWatch()
    watch.update(None, timezone.now() - LONG_AGO)  # Redis down, or a transport without broadcast

    assert watch.abandoned(timezone.now()) == []


def test_an_api_request_while_the_rate_limit_redis_is_down_answers_503(api, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "recsys_site.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        }
    }

    response = api.get("/api/v1/scenarios/")

    assert response.status_code == 503 and response["Retry-After"].isdigit()
    assert response.json()["errors"] == {}


def test_a_matrix_job_whose_message_was_lost_is_sent_again(redis_broker):
    group, _, _ = _group()
    job = matrix_job_create(group=group)
    first_task = MatrixJob.objects.get(pk=job.pk).task_id
    app.control.purge()  # the broker loses the waiting message
    _age(MatrixJob, job.pk, dispatched_at=True)

    report = sweep(watch=QueueWatch())

    job.refresh_from_db()
    assert report.redispatched == [job.pk]
    assert job.dispatch_attempts == 2 and job.task_id != first_task
    assert job.task_id in broker_task_ids(["cpu"])


def test_a_matrix_job_whose_worker_died_is_reaped_and_a_beating_one_is_not():
    group, _, _ = _group()
    lost, alive = (matrix_job_create(group=group, dispatch=False) for _ in range(2))
    old = timezone.now() - LONG_AGO
    MatrixJob.objects.filter(pk=lost.pk).update(status=RunStatus.RUNNING, started_at=old, heartbeat_at=old)
    MatrixJob.objects.filter(pk=alive.pk).update(status=RunStatus.RUNNING, started_at=old, heartbeat_at=old)
    with Heartbeat(MatrixJob, alive.pk):
        wait_until(lambda: MatrixJob.objects.get(pk=alive.pk).heartbeat_at > old, timeout=10)

    report = sweep(watch=QueueWatch())

    assert report.reaped_jobs == [lost.pk]
    assert "worker lost" in MatrixJob.objects.get(pk=lost.pk).error
    assert MatrixJob.objects.get(pk=alive.pk).status == RunStatus.RUNNING
