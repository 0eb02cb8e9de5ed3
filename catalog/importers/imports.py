"""Imports from files: parse everything first, then write items, users and events in one transaction.

Bad lines are found before anything is written. Without ``skip_invalid`` an
import with bad lines raises :class:`ImportFailed` and writes nothing; with it
the good lines are imported and the report lists what was skipped. Every write
goes through :mod:`catalog.services`, in chunks so progress can be shown.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from catalog.importers.movielens import movielens_parse
from catalog.importers.parsing import ImportFailed, InvalidField, LineError, Parsed, parse_kind
from catalog.importers.progress import ProgressFactory, no_progress
from catalog.importers.tabular import (
    EventTimes,
    InteractionColumns,
    ItemColumns,
    TabularFile,
    interactions_parse,
    items_parse,
    tabular_records,
)
from catalog.services import (
    EndUserRow,
    EventRow,
    IngestResult,
    ItemRow,
    UpsertResult,
    chunked,
    end_users_upsert,
    interactions_ingest,
    items_category_add,
    items_upsert,
)
from recsys_site.errors import ValidationFailed

CHUNK_SIZE = 20_000
DEFAULT_INTERACTION_COLUMNS = InteractionColumns()
DEFAULT_ITEM_COLUMNS = ItemColumns()


@dataclass
class ImportReport:
    """What an import did. Items and users created by events that named unknown ids count as created."""

    source: str = ""
    items: UpsertResult = field(default_factory=UpsertResult)
    users: UpsertResult = field(default_factory=UpsertResult)
    events: IngestResult = field(default_factory=IngestResult)
    skipped: list[LineError] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def items_created(self) -> int:
        return self.items.created + self.events.items_created

    @property
    def users_created(self) -> int:
        return self.users.created + self.events.users_created

    def summary(self, *, examples: int = 5) -> list[str]:
        lines = [
            f"Imported {self.source}" if self.source else "Imported",
            f"  items:  {self.items_created} created, {self.items.updated} updated",
            f"  users:  {self.users_created} created, {self.users.updated} updated",
            f"  events: {self.events.created} created, {self.events.duplicates} duplicates (already stored)",
        ]
        if self.skipped:
            lines.append(f"  skipped {len(self.skipped)} invalid line{'s' if len(self.skipped) != 1 else ''}:")
            lines.extend(f"    {line}" for line in skipped_summary(self.skipped, examples=examples))
        lines.append(f"  in {self.seconds:.2f} s")
        return lines


def skipped_summary(errors: Sequence[LineError], *, examples: int = 5) -> list[str]:
    """One line per problem: how many lines had it, the first few of them, and one full message."""
    by_problem: dict[tuple[str, str], list[LineError]] = defaultdict(list)
    for error in errors:
        by_problem[(error.source, error.problem)].append(error)
    lines = []
    for (source, problem), grouped in sorted(by_problem.items(), key=lambda entry: -len(entry[1])):
        numbers = ", ".join(str(error.line) for error in grouped[:examples])
        more = ", …" if len(grouped) > examples else ""
        where = f"{source} " if source else ""
        lines.append(f"{problem}: {len(grouped)} ({where}lines {numbers}{more}; e.g. {grouped[0].message})")
    return lines


def movielens_import(
    *, folder: Path, id_prefix: str = "", skip_invalid: bool = False, progress: ProgressFactory = no_progress
) -> ImportReport:
    """Import a MovieLens folder (ml-100k, ml-1m or ml-latest layout): movies, users, then ratings."""
    started = time.perf_counter()
    data = movielens_parse(folder, id_prefix=id_prefix, progress=progress)
    report = ImportReport(source=f"{folder} ({data.layout.name} layout)", skipped=_accepted(data.errors, skip_invalid))
    with transaction.atomic():
        _write(report, items=data.items, users=data.users, events=data.events, progress=progress)
    report.seconds = time.perf_counter() - started
    return report


def interactions_file_import(  # noqa: PLR0913 - one option per flag of import_interactions
    *,
    file: TabularFile,
    columns: InteractionColumns = DEFAULT_INTERACTION_COLUMNS,
    kind: str = "view",
    times: EventTimes | None = None,
    id_prefix: str = "",
    category: str | None = None,
    create_missing: bool = True,
    skip_invalid: bool = False,
    progress: ProgressFactory = no_progress,
) -> ImportReport:
    """Import events; with ``create_missing`` off, an event naming an unknown user or item is a bad line.

    ``times`` (row order or one fixed time) stands in for a missing time column; ``category`` is added to
    every item the events name, stored or new.
    """
    started = time.perf_counter()
    if not columns.kind:
        _check_kind(kind)
    if (columns.timestamp is None) == (times is None):
        raise ImportFailed("name either a time column or how to time the events (row order or a fixed time)")
    with tabular_records(file, required_columns=columns.required, progress=progress) as records:
        events = interactions_parse(records, columns=columns, kind=kind, times=times, id_prefix=id_prefix)
    report = ImportReport(source=str(file.path), skipped=_accepted(events.errors, skip_invalid))
    with transaction.atomic():
        if category:
            _categorise(report, {event.item for event in events.rows}, category)
        _write(report, events=events, create_missing=create_missing, skip_invalid=skip_invalid, progress=progress)
    report.seconds = time.perf_counter() - started
    return report


def items_file_import(
    *,
    file: TabularFile,
    columns: ItemColumns = DEFAULT_ITEM_COLUMNS,
    categories_separator: str = "|",
    id_prefix: str = "",
    category: str | None = None,
    skip_invalid: bool = False,
    progress: ProgressFactory = no_progress,
) -> ImportReport:
    """Create items, and update title, description and categories of the ones already stored."""
    started = time.perf_counter()
    with tabular_records(file, required_columns=columns.required, progress=progress) as records:
        items = items_parse(
            records,
            columns=columns,
            categories_separator=categories_separator,
            id_prefix=id_prefix,
            category=category,
        )
    report = ImportReport(source=str(file.path), skipped=_accepted(items.errors, skip_invalid))
    with transaction.atomic():
        _write(report, items=items, progress=progress)
    report.seconds = time.perf_counter() - started
    return report


def _categorise(report: ImportReport, external_ids: set[str], category: str) -> None:
    for chunk in chunked(sorted(external_ids), CHUNK_SIZE):
        _add_upsert(report.items, items_category_add(external_ids=chunk, category=category))


def _accepted(errors: list[LineError], skip_invalid: bool) -> list[LineError]:
    """The errors to report as skipped; without ``skip_invalid`` any error fails the import."""
    if errors and not skip_invalid:
        raise ImportFailed.for_lines(errors)
    return errors


def _check_kind(kind: str) -> None:
    try:
        parse_kind(kind)
    except InvalidField as error:
        raise ImportFailed(str(error)) from None


def _write(
    report: ImportReport,
    *,
    items: Parsed[ItemRow] | None = None,
    users: Parsed[EndUserRow] | None = None,
    events: Parsed[EventRow] | None = None,
    create_missing: bool = True,
    skip_invalid: bool = False,
    progress: ProgressFactory = no_progress,
) -> None:
    """Items first, then users, then events, so events find the items and users they name."""
    if items and items.rows:
        for part in _chunks_shown(len(items.rows), "Writing items", progress):
            _add_upsert(report.items, items_upsert(items=items.rows[part]))
    if users and users.rows:
        for part in _chunks_shown(len(users.rows), "Writing users", progress):
            _add_upsert(report.users, end_users_upsert(users=users.rows[part]))
    if events and events.rows:
        for part in _chunks_shown(len(events.rows), "Writing events", progress):
            report.events.add(
                _events_ingest(events.rows[part], events.lines[part], report, create_missing, skip_invalid)
            )


def _chunks_shown(total: int, description: str, progress: ProgressFactory) -> Iterator[slice]:
    """Slices of ``CHUNK_SIZE`` rows out of ``total``, each counted on a progress bar once written."""
    bar = progress(description=description, total=total)
    for start in range(0, total, CHUNK_SIZE):
        part = slice(start, min(start + CHUNK_SIZE, total))
        yield part
        bar.update(part.stop - part.start)
    bar.close()


def _events_ingest(
    rows: list[EventRow], lines: list[int], report: ImportReport, create_missing: bool, skip_invalid: bool
) -> IngestResult:
    """Ingest one chunk; events naming unknown ids fail the import, or are skipped and the rest ingested."""
    try:
        return interactions_ingest(events=rows, create_missing=create_missing)
    except ValidationFailed as error:
        unknown = _unknown_id_errors(error, lines)
        if not unknown:
            raise
        if not skip_invalid:
            raise ImportFailed.for_lines(unknown) from None
    # The failed ingest rolled back to its savepoint; retry with the events that name known ids.
    bad_lines = {error.line for error in unknown}
    report.skipped.extend(unknown)
    kept = [row for row, line in zip(rows, lines, strict=True) if line not in bad_lines]
    return interactions_ingest(events=kept, create_missing=create_missing)


def _unknown_id_errors(error: ValidationFailed, lines: list[int]) -> list[LineError]:
    """Line errors from the service's ``{"errors": {batch index: {field: [message]}}}`` detail."""
    detail = error.detail if isinstance(error.detail, dict) else {}
    errors = []
    for index, problems in detail.get("errors", {}).items():
        messages = [message for field_messages in problems.values() for message in field_messages]
        problem = "unknown user" if "user" in problems else "unknown item"
        errors.append(LineError(lines[int(index)], problem, "; ".join(messages)))
    return sorted(errors, key=lambda line_error: line_error.line)


def _add_upsert(total: UpsertResult, part: UpsertResult) -> None:
    total.received += part.received
    total.created += part.created
    total.updated += part.updated
