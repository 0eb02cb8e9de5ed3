"""Ingestion speed on the real PostgreSQL: MovieLens 100K import, the bulk endpoint, and raw COPY.

    .venv/bin/python -m benchmarks.ingest [--data ../shared/data/ml-100k] [--repeats 3] [--events N]

Creates (and drops) the database ``recsys_bench`` on the PostgreSQL of ``BENCH_DATABASE_ADMIN_URL``
(default postgres://postgres@localhost:5432/postgres). The endpoint is measured through a real HTTP
server (gunicorn, two workers) with batches of 5,000 events; raw COPY writes the same rows with user
and item ids resolved in advance, which is the ceiling for any ingestion path.

Both start from the same state: an empty interaction table with all its indexes and constraints, and a
client already connected (the server's workers have loaded the application and answered a request, as
COPY's connection is open before its clock starts). Each repeat measures the endpoint and then COPY, so
a change in the machine's load touches both; the ratio is the median of the repeats' ratios, with the
lowest and highest beside it.
"""

import argparse
import contextlib
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
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
    parser.add_argument("--events", type=int, default=None, help="ingest only the first N ratings (a quick run)")
    args = parser.parse_args()
    admin_url = os.environ.get("BENCH_DATABASE_ADMIN_URL", "postgres://postgres@localhost:5432/postgres")
    database_url = admin_url.rsplit("/", 1)[0] + f"/{DB_NAME}"
    env = _environment(database_url)
    _recreate_database(admin_url)
    try:
        _manage(env, "migrate", "-v0")
        import_seconds = _timed_import(env, args.data)
        rows = _ratings(args.data / "u.data")[: args.events]
        events = [_event(n, row) for n, row in enumerate(rows)]
        token = _admin_token(env)
        load_before = os.getloadavg()[0]
        with _server(env, token) as port:
            rates = [
                (_endpoint_rate(port, database_url, token, events), _copy_rate(database_url, rows))
                for _ in range(args.repeats)
            ]
    finally:
        _drop_database(admin_url)
    _report(import_seconds, len(rows), rates, (load_before, os.getloadavg()[0]))


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


@contextlib.contextmanager
def _server(env: dict[str, str], token: str) -> Iterator[int]:
    """A live gunicorn whose workers have loaded the application (--preload) and answered a request."""
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
            "--preload",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, timeout=120)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        for _ in range(4):  # an empty batch, refused after authentication: each worker opens its database connection
            connection.request("POST", "/api/v1/interactions/", body=b'{"events": []}', headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 400:
                raise RuntimeError(f"warm-up failed: {response.status}")
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def _endpoint_rate(port: int, database_url: str, token: str, events: list[dict]) -> float:
    """Events per second through POST /api/v1/interactions/ on a live gunicorn."""
    _truncate_interactions(database_url)
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


def _report(import_seconds: float, events: int, rates: list[tuple[float, float]], load: tuple[float, float]) -> None:
    ratios = [endpoint / copy for endpoint, copy in rates]
    figures = {
        "ml100k_import_seconds": round(import_seconds, 2),
        "events": events,
        "batch_size": BATCH,
        "endpoint_events_per_second": round(statistics.median(endpoint for endpoint, _ in rates)),
        "raw_copy_rows_per_second": round(statistics.median(copy for _, copy in rates)),
        "endpoint_to_copy_ratio": round(statistics.median(ratios), 3),
        "endpoint_to_copy_ratio_lowest": round(min(ratios), 3),
        "endpoint_to_copy_ratio_highest": round(max(ratios), 3),
        "target_endpoint_to_copy_ratio": TARGET_RATIO,
        "repeats": len(rates),
        "load_average_before": round(load[0], 1),
        "load_average_after": round(load[1], 1),
        "machine": machine(),
    }
    write_results("ingest", figures)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
