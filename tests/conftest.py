import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from accounts.authentication import kept_tokens_clear
from accounts.services import api_token_create
from dashboards.services import account_create
from training.serving import item_names, model_cache

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def admin_user(db):
    return get_user_model().objects.create_superuser("admin", "admin@example.com", "admin-password-123")


@pytest.fixture(autouse=True)
def _fresh_throttles() -> Iterator[None]:
    """Each test starts with no request counted against any rate limit (the cache is Redis, kept across tests).

    Only this checkout's keys are deleted: the Redis database may hold a broker's queues.
    """
    if not settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        cache.clear()
        yield
        return
    redis = cache._cache.get_client(write=True)
    for key in redis.scan_iter(f"{settings.CACHES['default']['KEY_PREFIX']}:*"):
        redis.delete(key)
    yield


@pytest.fixture(autouse=True)
def _fresh_item_names() -> Iterator[None]:
    """Each test starts with no item's name or API token kept by this process (another test's rows are gone)."""
    item_names.clear()
    kept_tokens_clear()
    yield


def token_client(user, scope: str = "full") -> APIClient:
    """An API client sending a fresh token of ``scope`` made for ``user``."""
    _, secret = api_token_create(user=user, scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


@pytest.fixture
def api(admin_user) -> APIClient:
    """An API client authenticated with a full token of the superuser."""
    return token_client(admin_user)


@pytest.fixture
def reader_api(db) -> APIClient:
    """An account of the viewer role: it may read, not write."""
    user = account_create(username="reader", password="reader-password-123", role="viewer")
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def fresh_model_cache() -> Iterator[None]:
    """The web process's model cache empty before and after the test."""
    model_cache.clear()
    yield
    model_cache.clear()


def _logged_in(client, *, username: str, role: str):
    account_create(username=username, password=f"{role}-pass-123", role=role)
    client.login(username=username, password=f"{role}-pass-123")
    return client


@pytest.fixture
def viewer(client):
    """The test client logged in as an account of the viewer role."""
    return _logged_in(client, username="vera", role="viewer")


@pytest.fixture
def analyst(client):
    """The test client logged in as an account of the analyst role."""
    return _logged_in(client, username="anna", role="analyst")


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker) -> Iterator[subprocess.Popen]:
    """A real Celery worker process on the real broker, using the test database.

    Tests that use it must be ``django_db(transaction=True)`` so the worker sees committed rows.
    """
    database = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER'] or 'postgres'}@{database['HOST'] or 'localhost'}:"
        f"{database['PORT'] or 5432}/{database['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "PYTHONUNBUFFERED": "1",
    }
    _purge_broker()
    (ROOT / "var").mkdir(exist_ok=True)
    log = open(ROOT / "var" / "test-worker.log", "w")  # noqa: SIM115 - open for the worker's whole life
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "recsys_site",
            "worker",
            "-Q",
            "cpu,gpu",
            "-c",
            "1",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"test-{os.getpid()}@%h",
            "--loglevel",
            "INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _wait_for_worker(worker)
    yield worker
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
    log.close()
    # The worker's pool processes can leave their sessions open for a moment after it exits, and the test
    # database cannot be dropped while they are.
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def _purge_broker() -> None:
    """Drop tasks a crashed earlier run may have left on the test broker."""
    from recsys_site.celery import app

    app.control.purge()


def _wait_for_worker(worker: subprocess.Popen, timeout: float = 60.0) -> None:
    from recsys_site.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"Celery worker exited with {worker.returncode}")
        replies = app.control.ping(timeout=1.0)
        if replies:
            return
    raise RuntimeError("Celery worker did not answer a ping within 60 s")


def free_port() -> int:
    """A loopback port that was free a moment ago, for a server the test starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    """Whether a server accepts connections on the loopback ``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def wait_until(predicate, *, timeout: float = 60.0, interval: float = 0.2):
    """Poll ``predicate`` until it returns a truthy value; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def queued_runs_execute() -> None:
    """Run every queued run in this process as the worker's task would (a study's next trials included)."""
    from training.models import RunStatus, TrainingRun
    from training.tasks import training_run_task

    while run := TrainingRun.objects.filter(status=RunStatus.QUEUED).order_by("pk").first():
        training_run_task(run.pk)


def run_trained(scenario, algorithm: str, *, params: dict | None = None, members=()):
    """A succeeded run of ``algorithm`` (an auto run once its search ended), trained here or by a worker that
    claimed it first."""
    from tests.factories import succeeded
    from training.services import training_run_create

    run = training_run_create(scenario=scenario, algorithm=algorithm, params=params or {}, members=members)
    queued_runs_execute()
    return succeeded(run)
