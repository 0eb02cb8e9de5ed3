"""What the import commands share: common options, the file options of one-file imports, and turning a run
into a summary or a CommandError."""

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
    parser.add_argument(
        "file",
        type=Path,
        help="CSV or TSV (with a header line, or see --columns) or JSON lines (one object a line); plain or"
        " compressed (.gz, .bz2, or a .zip holding one file).",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help=f"File format; by default from the extension ({', '.join(FORMAT_BY_SUFFIX)}), under any compression.",
    )
    parser.add_argument("--delimiter", help="Field delimiter of CSV/TSV files (default: ',' for csv, tab for tsv).")
    parser.add_argument("--encoding", default="utf-8-sig", help="Text encoding (default: UTF-8, with or without BOM).")
    parser.add_argument(
        "--columns",
        help="The file has no header line: these comma-separated names, in order, name its columns (e.g."
        " user,item,rating,timestamp); the column options refer to them.",
    )
    parser.add_argument(
        "--category", help="Add this category to every imported item (for events: every item they name, stored or new)."
    )
    parser.add_argument(
        "--id-prefix",
        default="",
        help="Prepended to every user, item and event id read (e.g. 'shop:') so two datasets can share one"
        " catalogue; default none.",
    )


def file_from_options(options: dict[str, Any]) -> TabularFile:
    columns = options["columns"].split(",") if options["columns"] is not None else None
    try:
        return tabular_file(
            options["file"],
            file_format=options["format"],
            delimiter=options["delimiter"],
            encoding=options["encoding"],
            columns=columns,
        )
    except DomainError as error:
        raise CommandError(str(error)) from error


class FileImportCommand(BaseCommand):
    """An import of one file: the file options and the common ones, then ``file_import`` with what they give.

    Subclasses add their column options in ``columns_arguments_add`` and run their import in ``file_import``,
    passing on the keyword arguments every file import takes.
    """

    def add_arguments(self, parser: ArgumentParser) -> None:
        file_arguments_add(parser)
        self.columns_arguments_add(parser)
        common_arguments_add(parser)

    def columns_arguments_add(self, parser: ArgumentParser) -> None:
        raise NotImplementedError

    def file_import(self, *, file: TabularFile, options: dict[str, Any], shared: dict[str, Any]) -> ImportReport:
        raise NotImplementedError

    def handle(self, *args: Any, **options: Any) -> None:
        file = file_from_options(options)
        shared = {
            "id_prefix": options["id_prefix"],
            "category": options["category"],
            "skip_invalid": options["skip_invalid"],
            "progress": progress_from_options(options),
        }
        import_run(self, lambda: self.file_import(file=file, options=options, shared=shared))


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
