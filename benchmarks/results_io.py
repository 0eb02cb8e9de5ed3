"""Shared output of the benchmarks: flat JSON in benchmarks/results/ (numbers, with their targets beside them),
from which ``python -m benchmarks.report`` writes docs/benchmarks.md."""

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def write_results(name: str, figures: dict[str, float | int | str | None]) -> Path:
    """Write flat ``figures`` to ``benchmarks/results/NAME.json``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "measured_at": datetime.now(UTC).isoformat(timespec="seconds"), **figures}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def read_results(name: str) -> dict:
    """The figures of ``benchmarks/results/NAME.json`` as last written (without its name and date); empty when none."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return {}
    figures = json.loads(path.read_text())
    figures.pop("benchmark", None)
    figures.pop("measured_at", None)
    return figures


def table(rows: list[tuple], header: tuple) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
