"""Ingestion speed on the real PostgreSQL: MovieLens 100K import, the bulk endpoint, and raw COPY.

    .venv/bin/python -m benchmarks.ingest [--data ../shared/data/ml-100k] [--repeats 3]

Creates (and drops) the database ``recsys_bench`` on the PostgreSQL of ``BENCH_DATABASE_ADMIN_URL``
(default postgres://postgres@localhost:5432/postgres). The endpoint is measured through a real HTTP
server (gunicorn, two workers) with batches of 5,000 events; raw COPY writes the same rows with user
and item ids resolved in advance, which is the ceiling for any ingestion path.
"""

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from benchmarks.results_io import ROOT, machine, write_results

DB_NAME = "recsys_bench"
TARGET_RATIO = 0.5
BATCH = 5000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ml-100k")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    admin_url = os.environ.get("BENCH_DATABASE_ADMIN_URL", "postgres://postgres@localhost:5432/postgres")
    database_url = admin_url.rsplit("/", 1)[0] + f"/{DB_NAME}"
    env = _environment(database_url)
    _recreate_database(admin_url)
    try:
        _manage(env, "migrate", "-v0")
        import_seconds = _timed_import(env, args.data)
        rows = _ratings(args.data / "u.data")
        events = [_event(n, row) for n, row in enumerate(rows)]
        token = _admin_token(env)
        endpoint = [_endpoint_rate(env, database_url, token, events) for _ in range(args.repeats)]
        copy = [_copy_rate(database_url, rows) for _ in range(args.repeats)]
    finally:
        _drop_database(admin_url)
    _report(import_seconds, len(rows), statistics.median(endpoint), statistics.median(copy), args.repeats)


def _environment(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SECRET_KEY": "benchmark-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_DEBUG": "0",
        "LOG_LEVEL": "WARNING",
    }


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


def _recreate_database(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{DB_NAME}"')


def _drop_database(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def _timed_import(env: dict[str, str], data: Path) -> float:
    start = time.perf_counter()
    _manage(env, "import_movielens", str(data), "--no-progress")
    return time.perf_counter() - start


def _ratings(path: Path) -> list[tuple[str, str, float, int]]:
    rows = []
    for line in path.read_text().splitlines():
        user, item, rating, timestamp = line.split("\t")
        rows.append((user, item, float(rating), int(timestamp)))
    return rows


def _event(number: int, row: tuple[str, str, float, int]) -> dict:
    user, item, rating, timestamp = row
    return {
        "user": user,
        "item": item,
        "kind": "rating",
        "value": rating,
        "occurred_at": timestamp,
        "event_id": f"bench:{number}",
    }


def _admin_token(env: dict[str, str]) -> str:
    _manage(
        {**env, "DJANGO_SUPERUSER_PASSWORD": "bench-password-1234"},
        "createsuperuser",
        "--noinput",
        "--username",
        "bench",
        "--email",
        "bench@localhost",
    )
    return _manage(env, "create_token", "bench", "--scope", "ingest").strip()


def _truncate_interactions(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("TRUNCATE catalog_interaction")


def _endpoint_rate(env: dict[str, str], database_url: str, token: str, events: list[dict]) -> float:
    """Events per second through POST /api/v1/interactions/ on a live gunicorn."""
    _truncate_interactions(database_url)
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "recsys_site.wsgi",
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "--timeout",
            "120",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port)
        bodies = [json.dumps({"events": events[i : i + BATCH]}).encode() for i in range(0, len(events), BATCH)]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        start = time.perf_counter()
        for body in bodies:
            connection.request("POST", "/api/v1/interactions/", body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            if response.status != 201:
                raise RuntimeError(f"ingestion failed: {response.status} {payload[:500]!r}")
        elapsed = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=30)
    return len(events) / elapsed


def _copy_rate(database_url: str, rows: list[tuple[str, str, float, int]]) -> float:
    """Rows per second of a raw COPY into the interaction table, ids resolved beforehand."""
    _truncate_interactions(database_url)
    with psycopg.connect(database_url) as connection:
        users = dict(connection.execute("SELECT external_id, id FROM catalog_enduser").fetchall())
        items = dict(connection.execute("SELECT external_id, id FROM catalog_item").fetchall())
        now = datetime.now(UTC)
        prepared = [
            (users[user], items[item], "rating", rating, datetime.fromtimestamp(ts, tz=UTC), "{}", f"bench:{n}", now)
            for n, (user, item, rating, ts) in enumerate(rows)
        ]
        start = time.perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy(
                "COPY catalog_interaction (user_id, item_id, kind, value, occurred_at, context, event_id, created_at)"
                " FROM STDIN"
            ) as copy,
        ):
            for row in prepared:
                copy.write_row(row)
        connection.commit()
        elapsed = time.perf_counter() - start
    return len(rows) / elapsed


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def _report(import_seconds: float, events: int, endpoint: float, copy: float, repeats: int) -> None:
    ratio = endpoint / copy
    figures = {
        "ml100k_import_seconds": round(import_seconds, 2),
        "events": events,
        "batch_size": BATCH,
        "endpoint_events_per_second": round(endpoint),
        "raw_copy_rows_per_second": round(copy),
        "endpoint_to_copy_ratio": round(ratio, 3),
        "target_endpoint_to_copy_ratio": TARGET_RATIO,
        "repeats": repeats,
        "machine": machine(),
    }
    write_results("ingest", figures)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
