"""Serving under load: the recommendations endpoint on gunicorn (2 workers, set up by gunicorn.conf.py, DEBUG off)
against ml-latest-small, driven by wrk (a separate process, with a Lua script that varies the users and the
sessions' films) at rising rates, beside the floor: the same scoring in-process. Needs ``wrk`` on the PATH
(Debian: ``apt-get install wrk``).

    .venv/bin/python -m benchmarks.serve [--data ../shared/data/ml-latest-small] [--rates 50,100,200,500]
        [--seconds 15] [--models ease,sasrec] [--sasrec-epochs 3]

Builds the database ``recsys_bench_serve`` (dropped afterwards), imports the films and every rating, trains
EASE and SASRec in-process (items with at least 5 events; SASRec few epochs: its serving cost does not depend on
them) and promotes each in a scenario of its own, then adds ``NEW_USERS`` users with 5 events each, after
training. A client account of the integration role calls with a ``recommend`` token (throttles off). Request
kinds: ``known`` (GET for a random user with ratings), ``new`` (GET for a random new user) and ``session``
(POST of 5 random films). The floor of each model and kind is the model's own scoring of such a history and
its top 10 (``history_scores`` and ``topk``), called in a loop with no HTTP and no database. The load average
of the machine is recorded before and after: other work on it slows every figure but the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from benchmarks.bench_database import benchmark_database
from benchmarks.live import Rating, _import_films, _ingest, _ratings, train_and_promote
from benchmarks.results_io import ROOT, machine, write_results

DB_NAME = "recsys_bench_serve"
TARGETS = {"p99_ms_at_100_rps": 10.0, "max_rps_p99_under_50ms": 500.0, "p50_over_floor_ms": 3.0}
KINDS = ("known", "new", "session")
NEW_USERS = 1000
EVENTS_PER_NEW_USER = 5
SESSION_ITEMS = 5
MIN_ITEM_EVENTS = 5
MEAN_PAUSE_MS = 100  # each connection's mean pause between requests: a rate of R takes R / 10 connections
WRK_SCRIPT = """
-- Each connection asks, waits for the answer, pauses a random 0 to 2 x MEAN_PAUSE_MS, and asks again.
local kind, url, token = os.getenv("BENCH_KIND"), os.getenv("BENCH_URL"), os.getenv("BENCH_TOKEN")
local pause = tonumber(os.getenv("BENCH_MEAN_PAUSE_MS"))
local function lines(path)
  local values = {}
  for line in io.lines(path) do values[#values + 1] = line end
  return values
end
local users, items = lines(os.getenv("BENCH_USERS")), lines(os.getenv("BENCH_ITEMS"))
local headers = {["Authorization"] = "Token " .. token, ["Content-Type"] = "application/json"}
local thread_number = 0

function setup(thread)
  thread_number = thread_number + 1
  thread:set("seed", thread_number)
end

function init(args)
  math.randomseed(os.time() * 100 + seed)
end

function delay()
  return math.random(0, 2 * pause)
end

function request()
  if kind == "session" then
    local chosen = {}
    for _ = 1, 5 do chosen[#chosen + 1] = string.format("%q", items[math.random(#items)]) end
    return wrk.format("POST", url, headers, '{"k": 10, "items": [' .. table.concat(chosen, ", ") .. ']}')
  end
  return wrk.format("GET", url .. "?k=10&user=" .. users[math.random(#users)], headers)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH {"p50_us": %d, "p95_us": %d, "p99_us": %d, "requests": %d, "seconds": %f, "failures": %d}\\n',
    latency:percentile(50), latency:percentile(95), latency:percentile(99), summary.requests,
    summary.duration / 1e6, errors.connect + errors.read + errors.write + errors.status + errors.timeout))
end
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ml-latest-small")
    parser.add_argument("--rates", default="50,100,200,500")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--models", default="ease,sasrec")
    parser.add_argument("--sasrec-epochs", type=int, default=3)
    args = parser.parse_args()
    load_before = round(os.getloadavg()[0], 1)
    with benchmark_database(
        DB_NAME,
        artifacts="bench-artifacts-serve",
        RECSYS_THROTTLE_TOKEN_RATE="off",
        RECSYS_THROTTLE_ADDRESS_RATE="off",
    ):
        figures = _measure(args)
    figures.update(seconds_per_rate=args.seconds, sasrec_epochs=args.sasrec_epochs)
    figures.update({f"target_{name}": value for name, value in TARGETS.items()})
    figures.update(load_average_before=load_before, load_average_after=round(os.getloadavg()[0], 1), machine=machine())
    write_results("serve", figures)
    print(json.dumps(figures, indent=1), flush=True)


def _measure(args: argparse.Namespace) -> dict:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    ratings = _ratings(args.data)
    _import_films(args.data)
    _ingest(ratings)
    models = args.models.split(",")
    slugs = {model: _trained(model, args.sasrec_epochs) for model in models}
    known_items = _items_with_events(ratings)
    new_users = _new_users(ratings[-1].timestamp, known_items)
    requests = {
        "known": sorted({rating.user for rating in ratings}),
        "new": new_users,
        "session": known_items,
    }
    figures: dict = {}
    for model, slug in slugs.items():
        figures.update(_floors(model, slug, requests))
    token, rates = _token(), [int(rate) for rate in args.rates.split(",")]
    server, port = _gunicorn()
    try:
        for model, slug in slugs.items():
            _warm_up(port, token, slug, requests["known"])
            for kind in KINDS:
                for rate in rates:
                    _warm_up(port, token, slug, requests["known"], requests=2)  # waits out the last run's backlog
                    stats = _load(port, f"/api/v1/scenarios/{slug}/recommendations/", kind, rate, args, token,
                                    requests)  # fmt: skip
                    figures.update({f"{model}_{kind}_{name}_at_{rate}_rps": value for name, value in stats.items()})
                    print(model, kind, rate, stats, flush=True)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return _summary(figures, models, rates)


def _items_with_events(ratings: list[Rating]) -> list[str]:
    """Films with at least MIN_ITEM_EVENTS ratings: the ones the models know."""
    counts: dict[str, int] = {}
    for rating in ratings:
        counts[rating.item] = counts.get(rating.item, 0) + 1
    return sorted(item for item, count in counts.items() if count >= MIN_ITEM_EVENTS)


def _new_users(after: int, items: list[str]) -> list[str]:
    """NEW_USERS users created after training, with EVENTS_PER_NEW_USER ratings of random known films each."""
    from catalog.services import EventRow, interactions_ingest

    rng = np.random.default_rng(1)
    start = datetime.fromtimestamp(after, tz=UTC)
    users = [f"new{number}" for number in range(NEW_USERS)]
    events = [
        EventRow(user=user, item=str(item), kind="rating", value=4.0, occurred_at=start + timedelta(minutes=order + 1))
        for user in users
        for order, item in enumerate(rng.choice(items, size=EVENTS_PER_NEW_USER, replace=False))
    ]
    for begin in range(0, len(events), 5000):
        interactions_ingest(events=events[begin : begin + 5000])
    return users


def _trained(model: str, sasrec_epochs: int) -> str:
    from scenarios.services import scenario_create

    params = {
        "ease": {},
        "sasrec": {"epochs": sasrec_epochs, "embedding_size": 64, "layers": 2, "max_length": 50},
    }[model]
    slug = f"serve-{model}"
    scenario = scenario_create(
        data={
            "slug": slug,
            "name": f"Serving, {model}",
            "algorithm": model,
            "hyperparameters": params,
            "min_item_events": MIN_ITEM_EVENTS,
        }
    )
    train_and_promote(scenario, model)
    return slug


def _token() -> str:
    from accounts.services import api_token_create
    from dashboards.services import account_create

    client = account_create(username="bench-client", password="bench-client-password-1234", role="integration")
    return api_token_create(user=client, scope="recommend")[1]


def _floors(model: str, slug: str, requests: dict[str, list[str]], repeats: int = 2000) -> dict[str, float]:
    """p50 of the model's scoring and top 10 for each kind's histories, read beforehand: no HTTP, no database."""
    import torch

    from catalog.models import Item
    from scenarios.models import Scenario
    from training.algorithms.history import History, history_scores
    from training.live import Event, _history, history_length, user_history
    from training.serving import model_cache

    torch.set_num_threads(1)
    scenario = Scenario.objects.select_related("live_run").get(slug=slug)
    loaded = model_cache.get(scenario.live_run)
    length = history_length(loaded)
    item_ids = dict(Item.objects.values_list("external_id", "id"))
    rng = np.random.default_rng(0)
    figures = {}
    for kind in KINDS:
        if kind == "session":
            samples = [rng.choice(requests["session"], size=SESSION_ITEMS, replace=False) for _ in range(200)]
            events = [[Event(item_ids[str(item)], None) for item in sample] for sample in samples]
        else:
            users = [str(user) for user in rng.choice(requests[kind], size=200)]
            events = [user_history(scenario=scenario, user_external_id=user, length=length).events for user in users]
        histories: list[History] = [_history(scenario, loaded, chosen) for chosen in events]
        times = []
        for position in rng.integers(0, len(histories), size=repeats):
            started = time.perf_counter()
            torch.topk(history_scores(loaded.model, histories[position]), 10)
            times.append(time.perf_counter() - started)
        figures[f"floor_{model}_{kind}_p50_ms"] = round(statistics.median(times) * 1000, 3)
    return figures


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


def _warm_up(port: int, token: str, slug: str, users: list[str], requests: int = 40) -> None:
    """Load the model into both workers (the first request of each loads and verifies it) before measuring."""
    for user in users[:requests]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/scenarios/{slug}/recommendations/?user={user}",
            headers={"Authorization": f"Token {token}"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()


def _load(port: int, url: str, kind: str, rate: int, args: argparse.Namespace, token: str, requests: dict) -> dict:
    """wrk (one thread, ``rate`` / 10 connections, each pausing 100 ms on average between requests) for
    ``args.seconds``: the latency percentiles, the rate it reached (below ``rate`` once answers take long) and the
    failed requests (errors and non-2xx answers)."""
    with tempfile.TemporaryDirectory() as folder:
        script, users, items = (Path(folder) / name for name in ("load.lua", "users.txt", "items.txt"))
        script.write_text(WRK_SCRIPT)
        users.write_text("\n".join(urllib.parse.quote(user) for user in requests["new" if kind == "new" else "known"]))
        items.write_text("\n".join(requests["session"]))
        env = {
            **os.environ,
            "BENCH_USERS": str(users),
            "BENCH_ITEMS": str(items),
            "BENCH_KIND": kind,
            "BENCH_TOKEN": token,
            "BENCH_URL": url,
            "BENCH_MEAN_PAUSE_MS": str(MEAN_PAUSE_MS),
        }
        connections = max(1, round(rate * MEAN_PAUSE_MS / 1000))
        command = [
            "wrk", "-t1", f"-c{connections}", f"-d{args.seconds}s", "--timeout", "10s", "-s", str(script),
            f"http://127.0.0.1:{port}",
        ]  # fmt: skip
        output = subprocess.run(command, env=env, capture_output=True, text=True, check=True, timeout=args.seconds + 60)
    line = next(line for line in output.stdout.splitlines() if line.startswith("BENCH "))
    stats = json.loads(line.removeprefix("BENCH "))
    return {
        "p50_ms": round(stats["p50_us"] / 1000, 2),
        "p95_ms": round(stats["p95_us"] / 1000, 2),
        "p99_ms": round(stats["p99_us"] / 1000, 2),
        "rps": round(stats["requests"] / stats["seconds"], 1),
        "failures": stats["failures"],
    }


def _summary(figures: dict, models: list[str], rates: list[int]) -> dict:
    """The targets' keys, each the worst over models and request kinds."""
    pairs = [(model, kind) for model in models for kind in KINDS]
    if 100 in rates:
        at_100 = [figures[f"{model}_{kind}_p99_ms_at_100_rps"] for model, kind in pairs]
        figures["p99_ms_at_100_rps"] = None if None in at_100 else max(at_100)
    for model in models:
        figures[f"{model}_max_rps_p99_under_50ms"] = min(_max_rps(figures, f"{model}_{kind}", rates) for kind in KINDS)
    figures["max_rps_p99_under_50ms"] = min(figures[f"{model}_max_rps_p99_under_50ms"] for model in models)
    lowest = min(rates)
    over = {
        f"{model}_{kind}": None
        if figures[f"{model}_{kind}_p50_ms_at_{lowest}_rps"] is None
        else round(figures[f"{model}_{kind}_p50_ms_at_{lowest}_rps"] - figures[f"floor_{model}_{kind}_p50_ms"], 3)
        for model, kind in pairs
    }
    figures.update({f"{pair}_p50_over_floor_ms": value for pair, value in over.items()})
    figures["p50_over_floor_ms"] = None if None in over.values() else max(over.values())  # type: ignore[type-var]
    return figures


def _max_rps(figures: dict, pair: str, rates: list[int]) -> float:
    """The highest throughput measured with p99 ≤ 50 ms and no failure (0 when none)."""
    served = [
        figures[f"{pair}_rps_at_{rate}_rps"]
        for rate in rates
        if (figures[f"{pair}_p99_ms_at_{rate}_rps"] or float("inf")) <= 50
        and figures[f"{pair}_failures_at_{rate}_rps"] == 0
    ]
    return max(served, default=0.0)


if __name__ == "__main__":
    main()
