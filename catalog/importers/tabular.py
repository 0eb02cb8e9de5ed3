"""Parsing of generic interaction and item files: CSV, TSV (both with a header line) or JSON lines.

Columns are mapped by name. An interaction file without an event id column
gets a derived one, ``sha1:`` + SHA-1 of user, item, kind, time (UTC) and
value: importing the same file again, or another file holding the same
events, adds nothing, and identical events repeated in one file are stored
once. Unix seconds and ISO times for the same instant derive the same id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from catalog.importers.parsing import (
    ImportFailed,
    InvalidField,
    LineError,
    Parsed,
    delimited_records,
    json_records,
    parse_id,
    parse_kind,
    parse_number,
    parse_text,
    parse_timestamp,
    rows_parse,
)
from catalog.importers.progress import ProgressFactory, lines_tracked, no_progress
from catalog.services import EventRow, ItemRow

FORMATS = ("csv", "tsv", "jsonl")
FORMAT_BY_SUFFIX = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
DEFAULT_DELIMITERS = {"csv": ",", "tsv": "\t"}
TITLE_MAX_LENGTH = 500

TabularRecord = tuple[int, dict[str, Any] | LineError]


@dataclass(frozen=True)
class TabularFile:
    path: Path
    format: str
    delimiter: str = ","
    encoding: str = "utf-8-sig"  # plain UTF-8, tolerating the byte-order mark spreadsheets write


def tabular_file(
    path: Path, *, file_format: str | None = None, delimiter: str | None = None, encoding: str = "utf-8-sig"
) -> TabularFile:
    """Describe ``path``: the format comes from its extension unless given; the delimiter from the format."""
    if not path.is_file():
        raise ImportFailed(f"{path} is not a file")
    resolved = file_format or FORMAT_BY_SUFFIX.get(path.suffix.lower())
    if resolved not in FORMATS:
        known = ", ".join(FORMAT_BY_SUFFIX)
        raise ImportFailed(f"cannot tell the format of {path.name} (known extensions: {known}); name it explicitly")
    if delimiter == "\\t":  # what a shell passes for --delimiter '\t'
        delimiter = "\t"
    if delimiter is not None and len(delimiter) != 1:
        raise ImportFailed(f"the delimiter must be one character, not {delimiter!r}")
    return TabularFile(path, resolved, delimiter or DEFAULT_DELIMITERS.get(resolved, ","), encoding)


@contextmanager
def tabular_records(
    file: TabularFile, *, required_columns: Iterable[str], progress: ProgressFactory = no_progress
) -> Iterator[Iterator[TabularRecord]]:
    """Open ``file`` and yield its records; a CSV/TSV header lacking a required column fails the whole import."""
    try:
        with open(file.path, encoding=file.encoding, newline="") as handle:
            lines = lines_tracked(handle, progress=progress, description=f"Parsing {file.path.name}")
            if file.format == "jsonl":
                yield json_records(lines)
                return
            header, records = delimited_records(lines, delimiter=file.delimiter)
            missing = [name for name in required_columns if name not in header]
            if missing:
                raise ImportFailed(
                    f"the header of {file.path.name} has no column {', '.join(map(repr, missing))}"
                    f" (columns: {', '.join(header)})"
                )
            yield records
    except UnicodeDecodeError as error:
        raise ImportFailed(f"{file.path.name} is not valid {file.encoding} text ({error.reason})") from None


# Interactions ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InteractionColumns:
    """Column (or JSON field) names. ``value=None`` reads a ``value`` column when there is one, else 1.0."""

    user: str = "user"
    item: str = "item"
    timestamp: str = "timestamp"
    value: str | None = None
    kind: str | None = None
    event_id: str | None = None

    @property
    def required(self) -> list[str]:
        named = [self.user, self.item, self.timestamp, self.value, self.kind, self.event_id]
        return [name for name in named if name is not None]


def interactions_parse(
    records: Iterable[TabularRecord], *, columns: InteractionColumns, kind: str = "view"
) -> Parsed[EventRow]:
    """Events from records; ``kind`` is used when ``columns.kind`` is None."""

    def build(record: dict[str, Any]) -> EventRow:
        user = parse_id(record.get(columns.user), "user id")
        item = parse_id(record.get(columns.item), "item id")
        occurred_at = parse_timestamp(record.get(columns.timestamp))
        event_kind = parse_kind(record.get(columns.kind)) if columns.kind else kind
        value = _event_value(record, columns.value)
        if columns.event_id:
            event_id = parse_id(record.get(columns.event_id), "event id")
        else:
            event_id = event_id_derive(user=user, item=item, kind=event_kind, occurred_at=occurred_at, value=value)
        return EventRow(user=user, item=item, occurred_at=occurred_at, kind=event_kind, value=value, event_id=event_id)

    return rows_parse(records, build)


def event_id_derive(*, user: str, item: str, kind: str, occurred_at: datetime, value: float) -> str:
    """A stable id for an event that came without one; ``occurred_at`` must be in UTC."""
    content = "\x1f".join((user, item, kind, occurred_at.isoformat(), repr(value)))
    return "sha1:" + hashlib.sha1(content.encode(), usedforsecurity=False).hexdigest()


def _event_value(record: dict[str, Any], column: str | None) -> float:
    if column is not None:
        return parse_number(record.get(column), column)
    raw = record.get("value")
    if raw is None or raw == "":
        return 1.0
    return parse_number(raw, "value")


# Items -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemColumns:
    """Column names; for title, description and categories None means "the usual name, when the file has it"."""

    id: str = "id"
    title: str | None = None
    description: str | None = None
    categories: str | None = None

    @property
    def required(self) -> list[str]:
        return [name for name in (self.id, self.title, self.description, self.categories) if name is not None]


def items_parse(
    records: Iterable[TabularRecord], *, columns: ItemColumns, categories_separator: str = "|"
) -> Parsed[ItemRow]:
    def build(record: dict[str, Any]) -> ItemRow:
        return ItemRow(
            external_id=parse_id(record.get(columns.id), "item id"),
            title=parse_text(record.get(columns.title or "title"), "title", max_length=TITLE_MAX_LENGTH),
            description=parse_text(record.get(columns.description or "description"), "description"),
            categories=_categories(record.get(columns.categories or "categories"), categories_separator),
        )

    return rows_parse(records, build)


def _categories(raw: object, separator: str) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        names: list[object] = list(raw.split(separator))
    elif isinstance(raw, list):
        names = raw
    else:
        raise InvalidField("invalid categories", f"categories {raw!r} are neither text nor a list")
    if not all(isinstance(name, str) for name in names):
        raise InvalidField("invalid categories", f"categories {raw!r} are not all text")
    return [name.strip() for name in names if isinstance(name, str) and name.strip()]
