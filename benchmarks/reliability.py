"""Reliability figures: no input answers 5xx (schemathesis fuzzing and a table of known bad inputs), and, where
``benchmarks/reliability_faults.py`` exists, what injected faults cost (stuck runs, lost events).

    .venv/bin/python -m benchmarks.reliability [--data ../shared/data/ml-100k] [--examples 80] [--report-only]

Builds the database ``recsys_bench_reliability`` (dropped afterwards): imports MovieLens 100K, trains and promotes
one run, makes a group scenario with a member, and an admin and a viewer account with a full token each.
schemathesis then generates up to ``--examples`` requests per operation of the OpenAPI schema for each token and
sends them to the Django application in-process (WSGI, the whole middleware stack; no network, rate limits off);
``fuzz_5xx`` counts the answers of 500 or more. ``bad_inputs`` is the table of the inputs that once answered 500
(issue 29), each sent with the admin token. Writes ``benchmarks/results/reliability.json`` and
``docs/reliability.md``; ``--report-only`` rewrites the page from the results file.
"""

import argparse
import importlib
import importlib.util
import json
import os
from pathlib import Path

import psycopg

from benchmarks.results_io import RESULTS, ROOT, machine, table, write_results

DB_NAME = "recsys_bench_reliability"
COMMAND = ".venv/bin/python -m benchmarks.reliability"
DOC = ROOT / "docs" / "reliability.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ml-100k")
    parser.add_argument("--examples", type=int, default=80, help="generated requests per operation and token")
    parser.add_argument("--report-only", action="store_true", help="rewrite docs/reliability.md from the results")
    args = parser.parse_args()
    if not args.report_only:
        figures = _fuzz_and_bad_inputs(args.data, args.examples)
        figures.update(_faults())
        targets = {f"{key}_target": target for key, _, target in ROWS if target is not None}
        write_results("reliability", {**figures, **targets, "examples": args.examples, "machine": machine()})
    _document(json.loads((RESULTS / "reliability.json").read_text()))
    print(DOC.read_text())


def _fuzz_and_bad_inputs(data: Path, examples: int) -> dict[str, int]:
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
        DJANGO_STATIC_MANIFEST="0",
        LOG_LEVEL="CRITICAL",
        CACHE_URL="locmem://",
        RECSYS_THROTTLE_TOKEN_RATE="off",
        RECSYS_THROTTLE_ADDRESS_RATE="off",
        RECSYS_ARTIFACT_ROOT=str(ROOT / "var" / "bench-reliability-artifacts"),
    )
    try:
        import django

        django.setup()
        from benchmarks.reliability_fuzz import bad_inputs_send, fixtures_build, fuzz
        from benchmarks.reliability_inputs import BAD_INPUTS

        tokens = fixtures_build(data)
        figures = fuzz(tokens, examples=examples)
        figures.update(bad_inputs_send(BAD_INPUTS, token=tokens["admin"]))
        return figures
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def _faults() -> dict[str, int]:
    """``benchmarks.reliability_faults.measure()``'s figures (faults injected on real services), when it exists."""
    if importlib.util.find_spec("benchmarks.reliability_faults") is None:
        return {}
    return dict(importlib.import_module("benchmarks.reliability_faults").measure())


ROWS = (
    ("fuzz_cases", "requests generated from the OpenAPI schema (admin and viewer tokens)", None),
    ("fuzz_2xx", "of those, answered 2xx (accepted)", None),
    ("fuzz_4xx", "of those, answered 4xx (refused)", None),
    ("fuzz_4xx_not_json", "of the 4xx, without the JSON error format", 0),
    ("fuzz_5xx", "of those, answered 5xx", 0),
    ("bad_inputs_tried", "known bad inputs sent (the table in benchmarks/reliability_inputs.py)", None),
    ("bad_inputs_5xx", "of those, answered 5xx", 0),
    ("faults_injected", "faults injected (kill -9, Redis and PostgreSQL connection loss)", None),
    ("runs_stuck", "runs left queued or running after the faults", 0),
    ("events_acknowledged", "events acknowledged to clients during the faults", None),
    ("events_lost", "acknowledged events not stored", 0),
    ("fault_cases", "fault cases run (tests/test_reliability_faults.py)", None),
    ("fault_cases_failed", "of those, failed", 0),
)


def _document(figures: dict) -> None:
    rows = []
    for key, meaning, target in ROWS:
        value = figures.get(key)
        shown = "not measured" if value is None else f"{value:,}"
        rows.append((f"`{key}`", meaning, shown, "–" if target is None else str(target)))
    DOC.write_text(
        "# Reliability\n\n"
        "Generated by `"
        + COMMAND
        + "` from `benchmarks/results/reliability.json` (do not edit by hand).\n\n"
        + table(rows, ("figure", "what", "measured", "target"))
        + f"\n\nMeasured {figures.get('measured_at', '')} on {figures.get('machine', '')}, with up to "
        f"{figures.get('examples')} generated requests per operation, generation mode (valid and invalid data) and "
        "token. Fuzzing: schemathesis against the OpenAPI schema, in-process through the WSGI application; the known "
        "bad inputs go through the same application with the admin token. Fault figures come from "
        "`benchmarks/reliability_faults.py` when it is present.\n"
    )


if __name__ == "__main__":
    main()
