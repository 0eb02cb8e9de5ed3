"""What injected faults cost: runs left stuck and acknowledged events lost, on the real services.

    .venv/bin/python -m benchmarks.reliability_faults [--rounds 1]

Runs the fault cases of ``tests/test_reliability_faults.py`` (kill -9 of a training worker with none left, Redis
down at create, Redis restarted with a run queued and with a run training, ``pg_terminate_backend`` on the
worker's and on the web's connections, a task delivered twice, a queue without consumer, and events posted to
a gunicorn whose workers are killed with SIGKILL and whose database connections are cut) ``--rounds`` times,
each on a private redis-server, real worker and beat processes and the PostgreSQL of ``DATABASE_URL`` (the test
database of this checkout). Every case appends its injected faults and
its outcomes to a ledger (``RECSYS_FAULT_LEDGER``), which :func:`measure` counts: ``faults_injected``,
``runs_stuck`` (runs still queued or running when their case gave up waiting), ``events_acknowledged`` (answered
201) and ``events_lost`` (acknowledged, then not stored), plus ``fault_cases`` and ``fault_cases_failed``.
``benchmarks.reliability`` joins these figures into ``benchmarks/results/reliability.json``; run alone, this
module writes ``benchmarks/results/reliability_faults.json``.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from benchmarks.results_io import ROOT, machine, write_results

TEST_FILE = "tests/test_reliability_faults.py"
TARGETS = {"runs_stuck_target": 0, "events_lost_target": 0}
# Settings of the benchmark that runs this one (its database, its quiet logging) must not reach the tests.
PARENT_ONLY = ("DJANGO_", "RECSYS_", "CACHE_URL", "LOG_LEVEL", "DATABASE_URL")


def measure(*, rounds: int = 1) -> dict[str, int]:
    """Run the fault cases ``rounds`` times and count what the ledger recorded (flat integer counts)."""
    counts: Counter[str] = Counter()
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="recsys-faults-") as folder:
            ledger = Path(folder) / "ledger.jsonl"
            ledger.touch()
            passed, failed = _run_cases(ledger)
            counts.update(_count(ledger))
            counts.update(fault_cases=passed + failed, fault_cases_failed=failed)
    keys = ("faults_injected", "runs_stuck", "events_acknowledged", "events_lost", "fault_cases", "fault_cases_failed")
    return {key: int(counts[key]) for key in keys}


def _run_cases(ledger: Path) -> tuple[int, int]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(PARENT_ONLY)}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=os.environ.get("BENCH_FAULTS_DATABASE_URL", "postgres://postgres@localhost:5432/recsys"),
        RECSYS_FAULT_LEDGER=str(ledger),
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", TEST_FILE, "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
    print(summary, file=sys.stderr)
    passed, failed = (_tally(summary, word) for word in ("passed", "failed"))
    if passed + failed == 0:
        raise RuntimeError(f"the fault cases did not run: {summary}")
    return passed, failed + _tally(summary, "error")


def _tally(summary: str, word: str) -> int:
    found = re.search(rf"(\d+) {word}", summary)
    return int(found.group(1)) if found else 0


def _count(ledger: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in ledger.read_text().splitlines():
        entry = json.loads(line)
        if entry["kind"] == "fault":
            counts["faults_injected"] += 1
        elif entry["kind"] == "run":
            counts["runs_stuck"] += int(entry["stuck"])
        elif entry["kind"] == "events":
            counts["events_acknowledged"] += int(entry["acknowledged"])
            counts["events_lost"] += int(entry["lost"])
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    figures = measure(rounds=args.rounds)
    path = write_results("reliability_faults", {**figures, **TARGETS, "rounds": args.rounds, "machine": machine()})
    print(path.read_text())


if __name__ == "__main__":
    main()
