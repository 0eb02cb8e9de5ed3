"""Serving under load: the recommendations endpoint on gunicorn (2 workers, DEBUG off) against ml-latest-small,
driven by locust (headless, a separate process) at rising rates, beside the floor: the same scoring in-process.

    .venv/bin/python -m benchmarks.serve [--data ../shared/data/ml-latest-small] [--rates 50,100,200,400]
        [--seconds 15]

Builds the database ``recsys_bench_serve`` (dropped afterwards), imports the films and every rating, trains
EASE in-process (items with at least 5 events) and promotes it. Request kinds: ``known`` (GET for a random user
with ratings) and ``session`` (POST of 5 random films). The floor is the model's own scoring and top 10 for a
random known user, called in a loop with no HTTP and no database. SASRec is not measured here (its CPU training
takes longer than this benchmark's budget on two cores).
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg

from benchmarks.live import _import_films, _ingest, _ratings
from benchmarks.results_io import ROOT, machine, write_results

DB_NAME = "recsys_bench_serve"
TARGETS = {"p99_ms_at_100_rps": 10.0, "max_rps_p99_under_50ms": 500.0, "p50_over_floor_ms": 3.0}
LOCUSTFILE = """
import json, os, random
from locust import HttpUser, constant_throughput, task

USERS = json.loads(os.environ["BENCH_USERS"])
ITEMS = json.loads(os.environ["BENCH_ITEMS"])
KIND = os.environ["BENCH_KIND"]
HEADERS = {"Authorization": "Token " + os.environ["BENCH_TOKEN"]}
URL = "/api/v1/scenarios/serve-ease/recommendations/"


class Client(HttpUser):
    wait_time = constant_throughput(1)

    @task
    def recommend(self):
        if KIND == "known":
            self.client.get(URL, params={"user": random.choice(USERS), "k": 10}, headers=HEADERS, name=KIND)
        else:
            body = {"items": random.sample(ITEMS, 5), "k": 10}
            self.client.post(URL, json=body, headers=HEADERS, name=KIND)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ml-latest-small")
    parser.add_argument("--rates", default="50,100,200,400")
    parser.add_argument("--seconds", type=int, default=15)
    args = parser.parse_args()
    admin_url = os.environ.get("BENCH_DATABASE_ADMIN_URL", "postgres://postgres@localhost:5432/postgres")
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{DB_NAME}"')
    os.environ.update(
        DATABASE_URL=admin_url.rsplit("/", 1)[0] + f"/{DB_NAME}",
        DJANGO_SETTINGS_MODULE="recsys_site.settings",
        DJANGO_SECRET_KEY="benchmark-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        DJANGO_SECURE_SSL_REDIRECT="0",
        DJANGO_DEBUG="0",
        LOG_LEVEL="WARNING",
        RECSYS_ARTIFACT_ROOT=str(ROOT / "var" / "bench-artifacts-serve"),
        RECSYS_THROTTLE_TOKEN_RATE="off",
        RECSYS_THROTTLE_ADDRESS_RATE="off",
    )
    try:
        figures = _measure(args)
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    figures.update({f"target_{name}": value for name, value in TARGETS.items()}, machine=machine())
    write_results("serve", figures)
    print(figures, flush=True)


def _measure(args: argparse.Namespace) -> dict:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    ratings = _ratings(args.data)
    _import_films(args.data)
    _ingest(ratings)
    run = _trained()
    token = _token()
    users = sorted({rating.user for rating in ratings})
    items = sorted({rating.item for rating in ratings})
    figures: dict = {"floor_p50_ms": _floor_ms(run)}
    server, port = _gunicorn()
    try:
        _warm_up(port, token, users)
        for kind in ("known", "session"):
            for rate in (int(r) for r in args.rates.split(",")):
                stats = _locust(port, kind, rate, args.seconds, token, users, items)
                for name, value in stats.items():
                    figures[f"{kind}_{name}_at_{rate}_rps"] = value
                print(kind, rate, stats, flush=True)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return _summary(figures, [int(r) for r in args.rates.split(",")])


def _trained():
    from scenarios.services import scenario_create
    from training.models import RunStatus, TrainingRun
    from training.services import training_run_create, training_run_execute, training_run_promote

    scenario = scenario_create(
        data={"slug": "serve-ease", "name": "Serving, EASE", "algorithm": "ease", "min_item_events": 5}
    )
    run = training_run_create(scenario=scenario)
    assert training_run_execute(run_id=run.pk, device="cpu") == RunStatus.SUCCEEDED
    run = TrainingRun.objects.get(pk=run.pk)
    training_run_promote(run=run, force=True, reason="benchmark")
    return run


def _token() -> str:
    from django.contrib.auth import get_user_model

    from accounts.services import api_token_create

    user = get_user_model().objects.create_superuser("bench", "bench@localhost", "bench-password-1234")
    return api_token_create(user=user, scope="full")[1]


def _floor_ms(run, repeats: int = 2000) -> float:
    import torch

    from training.serving import model_cache

    torch.set_num_threads(1)
    loaded = model_cache.get(run)
    rng = np.random.default_rng(0)
    times = []
    for position in rng.integers(0, len(loaded.user_ids), size=repeats):
        started = time.perf_counter()
        torch.topk(loaded.model.score(np.array([position]))[0], 10)
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 3)


def _gunicorn() -> tuple[subprocess.Popen, int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "recsys_site.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env={**os.environ, "RECSYS_WEB_TORCH_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, port
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def _warm_up(port: int, token: str, users: list[str], requests: int = 40) -> None:
    """Load the model into both workers (the first request of each loads and verifies it) before measuring."""
    import urllib.request

    for user in users[:requests]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/scenarios/serve-ease/recommendations/?user={user}",
            headers={"Authorization": f"Token {token}"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()


def _locust(port: int, kind: str, rate: int, seconds: int, token: str, users: list, items: list) -> dict:
    import json

    with tempfile.TemporaryDirectory() as folder:
        locustfile = Path(folder) / "locustfile.py"
        locustfile.write_text(LOCUSTFILE)
        env = {
            **os.environ,
            "BENCH_USERS": json.dumps(users),
            "BENCH_ITEMS": json.dumps(items),
            "BENCH_KIND": kind,
            "BENCH_TOKEN": token,
        }
        command = [
            str(Path(sys.executable).parent / "locust"), "-f", str(locustfile), "--headless",
            "-u", str(rate), "-r", str(rate), "--run-time", f"{seconds}s", "--host", f"http://127.0.0.1:{port}",
            "--csv", str(Path(folder) / "out"), "--only-summary",
        ]  # fmt: skip
        subprocess.run(command, env=env, capture_output=True, check=False, timeout=seconds + 120)
        with (Path(folder) / "out_stats.csv").open(newline="") as handle:
            row = next(r for r in csv.DictReader(handle) if r["Name"] == kind)
    return {
        "p50_ms": float(row["50%"]),
        "p95_ms": float(row["95%"]),
        "p99_ms": float(row["99%"]),
        "rps": round(float(row["Requests/s"]), 1),
        "failures": int(row["Failure Count"]),
    }


def _summary(figures: dict, rates: list[int]) -> dict:
    kinds = ("known", "session")
    at_100 = [figures[f"{kind}_p99_ms_at_100_rps"] for kind in kinds if f"{kind}_p99_ms_at_100_rps" in figures]
    figures["p99_ms_at_100_rps"] = max(at_100) if at_100 else None
    figures["max_rps_p99_under_50ms"] = min(
        max(
            [figures[f"{kind}_rps_at_{rate}_rps"] for rate in rates if figures[f"{kind}_p99_ms_at_{rate}_rps"] <= 50]
            or [0.0]
        )
        for kind in kinds
    )
    lowest = min(rates)
    figures["p50_over_floor_ms"] = round(
        max(figures[f"{kind}_p50_ms_at_{lowest}_rps"] for kind in kinds) - figures["floor_p50_ms"], 3
    )
    return figures


if __name__ == "__main__":
    main()
