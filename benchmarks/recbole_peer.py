"""What both RecBole comparisons share: RecBole 1.2.1 run in its own virtualenv on MovieLens, handing over the
exact split it drew so that our models are trained and tested on the same one."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch

from benchmarks.results_io import ROOT, write_results

PEERS = ROOT / "benchmarks" / "peers"
RECBOLE_PYTHON = PEERS / ".venv-recbole" / "bin" / "python"
SEED = 2020
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ml-100k"

# (result key, our metric name, label): what both comparisons report at K = 10.
METRICS = (
    ("ndcg10", "ndcg@10", "NDCG@10"),
    ("recall10", "recall@10", "Recall@10"),
    ("mrr10", "mrr@10", "MRR@10"),
    ("hit10", "hit@10", "Hit@10"),
)

Split = TypeVar("Split")


@dataclass(frozen=True)
class Model:
    """One model on both sides."""

    key: str  # prefix of the result keys
    label: str
    recbole: str  # RecBole's model name, as run_recbole.py knows it
    ours: str  # our registry name
    params: dict  # ours; sizes comparable to RecBole's defaults, the rest the platform's defaults

    def figures(self, ours: dict, recbole: dict, *, times: dict[str, int]) -> dict[str, float]:
        """Its test metrics (6 decimals) and ``times`` (name: decimals) on our side and on RecBole's, each with ours
        over theirs, under keys that start with :attr:`key`."""
        figures: dict[str, float] = {}
        for metric, name, _ in METRICS:
            figures |= _side_by_side(f"{self.key}_{metric}", ours["test"][name], recbole["test"][name], digits=6)
        for name, digits in times.items():
            figures |= _side_by_side(f"{self.key}_{name}", ours[name], recbole[name], digits=digits)
        return figures


def _side_by_side(key: str, mine: float, theirs: float, *, digits: int) -> dict[str, float]:
    return {
        f"{key}_ours": round(mine, digits),
        f"{key}_recbole": round(theirs, digits),
        f"{key}_ratio": round(mine / theirs, 4),
    }


def comparison_parser(description: str | None) -> argparse.ArgumentParser:
    """The options both comparisons take: the MovieLens 100K folder and the torch threads of either side."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--threads", type=int, default=2)
    return parser


def recbole_run_with_split(
    *, name: str, data: Path, models: Sequence[str], options: Sequence[str], threads: int, load: Callable[[Path], Split]
) -> tuple[dict, Split]:
    """Install RecBole if needed and run benchmarks/peers/run_recbole.py on ``data`` (its ``options`` beside the
    shared ones); returns its JSON and its split read by ``load``."""
    torch.set_num_threads(threads)
    subprocess.run(["bash", str(PEERS / "setup_recbole.sh")], check=True)
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as scratch:
        split_path = Path(scratch) / "recbole_split.npz"
        command = [str(RECBOLE_PYTHON), str(PEERS / "run_recbole.py"), "--data", str(data / "u.data")]
        command += ["--models", ",".join(models), "--split-out", str(split_path), "--threads", str(threads), *options]
        print(f"==> RecBole {', '.join(models)}", file=sys.stderr, flush=True)
        completed = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
        results = json.loads(completed.stdout.strip().splitlines()[-1])
        if not all(figures["same_split_as_first_model"] for figures in results["models"].values()):
            raise RuntimeError("RecBole drew a different split for some model: the comparison would not be paired")
        return results, load(split_path)


def comparison_report(name: str, figures: dict, markdown: str) -> None:
    """Write the results file and show the run's table (docs/benchmarks.md is written by ``benchmarks.report``)."""
    path = write_results(name, figures)
    print(markdown)
    print(f"\nwrote {path.relative_to(ROOT)}; `python -m benchmarks.report` refreshes the docs", file=sys.stderr)
