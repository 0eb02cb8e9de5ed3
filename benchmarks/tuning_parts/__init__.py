"""The parts of ``python -m benchmarks.tuning``. A part module defines:

- ``add_arguments(parser)``: its options, each prefixed with the part's name (``--ratings-folds``);
- ``run(args) -> dict``: measures and returns flat figures, each target beside it as ``target_<key>``;
- ``report_rows(figures)``: yields ``(what, figure, target, met)`` for docs/benchmarks.md from the figures it wrote,
  nothing when they are absent (the part was never run).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Iterator
from types import ModuleType

PARTS = ("tuning", "auto", "blend", "transfer", "ratings")


def add_algorithms_option(parser: argparse.ArgumentParser, flag: str, *, default: tuple[str, ...], what: str) -> None:
    """Add ``flag``: comma-separated algorithm names, ``default`` when it is not given; ``what`` they are for."""
    parser.add_argument(
        flag,
        type=lambda text: tuple(text.split(",")),
        default=default,
        help=f"Comma-separated {what} (default {','.join(default)}).",
    )


def part_module(part: str) -> ModuleType | None:
    """The part's module, or None while it is not written."""
    try:
        return importlib.import_module(f"benchmarks.tuning_parts.{part}")
    except ModuleNotFoundError as error:
        if error.name != f"benchmarks.tuning_parts.{part}":
            raise
        return None


def report_rows(figures: dict) -> Iterator[tuple[str, tuple[str, str, str, bool | None]]]:
    """``(part, row)`` for every row the written parts report."""
    for part in PARTS:
        module = part_module(part)
        if module is not None:
            for row in module.report_rows(figures):
                yield part, row
