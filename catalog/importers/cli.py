"""What the import commands share: common options, and turning a run into a summary or a CommandError."""

from __future__ import annotations

from argparse import ArgumentParser
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from catalog.importers.imports import ImportReport
from catalog.importers.parsing import ImportFailed
from catalog.importers.progress import ProgressFactory, terminal_progress
from catalog.importers.tabular import FORMAT_BY_SUFFIX, FORMATS, TabularFile, tabular_file
from recsys_site.errors import DomainError


def common_arguments_add(parser: ArgumentParser) -> None:
    parser.add_argument(
        "--skip-invalid",
        action="store_true",
        help="Import the valid lines and report the invalid ones. By default one invalid line stops the import"
        " and nothing is written.",
    )
    parser.add_argument("--no-progress", action="store_true", help="No progress bars (they only show on a terminal).")


def file_arguments_add(parser: ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="CSV or TSV with a header line, or JSON lines (one object a line).")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help=f"File format; by default from the extension ({', '.join(FORMAT_BY_SUFFIX)}).",
    )
    parser.add_argument("--delimiter", help="Field delimiter of CSV/TSV files (default: ',' for csv, tab for tsv).")
    parser.add_argument("--encoding", default="utf-8-sig", help="Text encoding (default: UTF-8, with or without BOM).")


def file_from_options(options: dict[str, Any]) -> TabularFile:
    try:
        return tabular_file(
            options["file"], file_format=options["format"], delimiter=options["delimiter"], encoding=options["encoding"]
        )
    except DomainError as error:
        raise CommandError(str(error)) from error


def progress_from_options(options: dict[str, Any]) -> ProgressFactory:
    return terminal_progress(enabled=not options["no_progress"])


def import_run(command: BaseCommand, run: Callable[[], ImportReport]) -> None:
    """Run an import, print its summary, or fail with a CommandError naming what was wrong."""
    try:
        report = run()
    except ImportFailed as error:
        hint = " (pass --skip-invalid to import the valid lines)" if error.line_errors else ""
        raise CommandError(f"{error}{hint}") from error
    except DomainError as error:
        raise CommandError(str(error)) from error
    command.stdout.write("\n".join(report.summary()))
