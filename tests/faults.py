"""Real faults for the reliability tests: a private redis-server on its own port that can be stopped and
restarted (losing what it held), Celery worker and beat processes that can be killed with SIGKILL, and
PostgreSQL connections cut with ``pg_terminate_backend``.

Each injected fault and each checked outcome is also appended to the ledger named by
``RECSYS_FAULT_LEDGER`` (one JSON object a line), which ``benchmarks.reliability_faults`` counts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import connection
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from recsys_site.celery import app

ROOT = Path(__file__).resolve().parent.parent


def record(kind: str, **fields: object) -> None:
    """Append one fault or outcome to the ledger, when one is kept."""
    path = os.environ.get("RECSYS_FAULT_LEDGER")
    if path:
        with open(path, "a") as ledger:
            ledger.write(json.dumps({"kind": kind, **fields}) + "\n")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateRedis:
    """A redis-server of its own on a free loopback port, without persistence: a restart loses its data."""

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = tempfile.mkdtemp(prefix="recsys-fault-redis-")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.folder,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the private redis-server did not start")

    def stop(self, *, fault: bool = True) -> None:
        """SIGKILL: everything it held (queued and reserved messages) is lost."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None
            if fault:
                record("fault", what="redis killed")

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def broker(url: str) -> Iterator[None]:
    """Make this process send tasks to (and inspect) the broker at ``url`` for the block."""
    previous = settings.CELERY_BROKER_URL
    _point_app_at(url)
    try:
        yield
    finally:
        _point_app_at(previous)


def _point_app_at(url: str) -> None:
    settings.CELERY_BROKER_URL = url
    os.environ["CELERY_BROKER_URL"] = url  # Celery reads the variable before its own setting
    app.conf.broker_url = url
    app._pool = None  # kombu keeps one pool per broker address: the old one serves again when switched back
    app.amqp._producer_pool = None


def process_env() -> dict[str, str]:
    """The environment of a child process that works on this test run's database."""
    database = settings.DATABASES["default"]
    url = (
        f"postgres://{database['USER'] or 'postgres'}@{database['HOST'] or 'localhost'}:"
        f"{database['PORT'] or 5432}/{database['NAME']}"
    )
    return {**os.environ, "DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}


class WebServer:
    """gunicorn with two workers on the test database, keeping its database connections between requests."""

    def __init__(self, *, broker_url: str) -> None:
        self.port = free_port()
        self.broker_url = broker_url
        self.process: subprocess.Popen | None = None

    def start(self) -> WebServer:
        env = {**process_env(), "CELERY_BROKER_URL": self.broker_url, "DATABASE_CONN_MAX_AGE": "600"}
        log = open(ROOT / "var" / f"fault-web-{os.getpid()}.log", "a")  # noqa: SIM115 - kept for the server's life
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "recsys_site.wsgi", "-w", "2", "-b", f"127.0.0.1:{self.port}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def workers(self) -> list[int]:
        assert self.process is not None
        found = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True)
        return [int(pid) for pid in found.stdout.split()]

    def kill_a_worker(self) -> None:
        """SIGKILL one gunicorn worker, perhaps mid-request; the master starts another."""
        workers = self.workers()
        if workers:
            os.kill(workers[0], signal.SIGKILL)
            record("fault", what="web worker killed")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        self.process = None


class CeleryProcess:
    """A ``celery worker`` or ``celery beat`` on the test database and a given broker, in its own session."""

    def __init__(self, role: str, *, broker_url: str, queues: str = "cpu", extra_env: dict[str, str] | None = None):
        self.role, self.broker_url, self.queues = role, broker_url, queues
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None
        (ROOT / "var").mkdir(exist_ok=True)
        self.log_path = ROOT / "var" / f"fault-{role}-{os.getpid()}.log"

    def start(self) -> CeleryProcess:
        env = {**process_env(), "CELERY_BROKER_URL": self.broker_url, **self.extra_env}
        command = [sys.executable, "-m", "celery", "-A", "recsys_site", self.role, "--loglevel", "INFO"]
        if self.role == "worker":
            command += [
                "-Q",
                self.queues,
                "-c",
                "1",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"fault-{os.getpid()}-{time.monotonic_ns()}@%h",
            ]
        else:
            command += ["-s", str(ROOT / "var" / f"fault-beat-{os.getpid()}")]
        log = open(self.log_path, "a")  # noqa: SIM115 - kept open for the process's life
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group (the worker and its pool processes): nothing gets to clean up."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            record("fault", what=f"{self.role} killed")
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None


def wait_for_consumer(queue: str, timeout: float = 90.0) -> None:
    """Until a worker answers that it consumes ``queue`` on the broker this process uses."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            replies = app.control.inspect(timeout=1.0).active_queues() or {}
        except (RedisError, KombuError, OSError):  # a connection the restarted server closed: the next try reopens
            time.sleep(0.5)
            continue
        if any(entry["name"] == queue for queues in replies.values() for entry in queues):
            return
    raise AssertionError(f"no worker consumed {queue} within {timeout} s")


def terminate_other_backends() -> int:
    """``pg_terminate_backend`` on every session of the test database but this process's own, each waited for until
    it has ended (10 s at most); how many."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        killed = int(cursor.fetchone()[0])
    record("fault", what=f"{killed} database connections terminated")
    return killed


def terminate_own_backend() -> None:
    """Cut this process's own database session from another connection, as a failover or an admin would; returns
    once the session has ended (10 s at most)."""
    pid = connection.cursor().connection.info.backend_pid
    database = settings.DATABASES["default"]
    with psycopg.connect(
        host=database["HOST"] or "localhost",
        port=database["PORT"] or 5432,
        user=database["USER"] or "postgres",
        dbname=database["NAME"],
        autocommit=True,
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))
    record("fault", what="web database connection terminated")
