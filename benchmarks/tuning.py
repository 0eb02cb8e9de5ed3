"""The best model without a data scientist: tuning, ``auto``, blending, transfer without order and rating prediction,
each measured against its baseline or peer in the same run.

    .venv/bin/python -m benchmarks.tuning --part ratings [--part blend ...] [part options]

Each part lives in ``benchmarks/tuning_parts/<part>.py``: it adds its options to the parser and returns flat figures
(numbers, each target beside it under ``target_<key>``). Figures of the parts run are merged into
``benchmarks/results/tuning.json``; the other parts' figures stay as they were, so one part can be rerun alone.
Then ``python -m benchmarks.report`` rewrites docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks.results_io import machine, read_results, write_results
from benchmarks.tuning_parts import PARTS, part_module

NAME = "tuning"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.tuning", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    modules = {part: module for part in PARTS if (module := part_module(part)) is not None}
    parser.add_argument("--part", action="append", choices=list(modules), required=True, help="A part to run.")
    for module in modules.values():
        module.add_arguments(parser)
    args = parser.parse_args(argv)
    figures = read_results(NAME)
    for part in dict.fromkeys(args.part):
        print(f"==> {part}", file=sys.stderr)
        figures |= modules[part].run(args)
    figures["machine"] = machine()
    path = write_results(NAME, figures)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
