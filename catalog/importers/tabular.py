"""Parsing of generic interaction and item files: CSV, TSV or JSON lines, plain or compressed.

Columns are mapped by name: from the header line, or, for a file without
one, from the names given in order (``columns``). An interaction file without an event id column
gets a derived one, ``sha1:`` + SHA-1 of user, item, kind, time (UTC) and
value: importing the same file again, or another file holding the same
events, adds nothing, and identical events repeated in one file are stored
once. Unix seconds and ISO times for the same instant derive the same id.

A file without times takes them from the row order (line *n* happened *n*
seconds after the unix epoch: only the order matters to a temporal split) or
gives every event one fixed time. An id prefix keeps two datasets apart in one
catalogue: it goes before user, item and event ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from catalog.importers.files import COMPRESSIONS, data_name, text_opened
from catalog.importers.parsing import (
    MAX_ID_LENGTH,
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
ROW_ORDER = "row-order"
ROW_ORDER_ORIGIN = datetime(1970, 1, 1, tzinfo=UTC)

TabularRecord = tuple[int, dict[str, Any] | LineError]


@dataclass(frozen=True)
class TabularFile:
    path: Path
    format: str
    delimiter: str = ","
    encoding: str = "utf-8-sig"  # plain UTF-8, tolerating the byte-order mark spreadsheets write
    columns: tuple[str, ...] | None = None  # a CSV/TSV without a header line: its columns' names, in order


def tabular_file(
    path: Path,
    *,
    file_format: str | None = None,
    delimiter: str | None = None,
    encoding: str = "utf-8-sig",
    columns: Iterable[str] | None = None,
) -> TabularFile:
    """Describe ``path``: the format comes from its extension (under any compression) unless given."""
    if not path.is_file():
        raise ImportFailed(f"{path} is not a file")
    resolved = file_format or FORMAT_BY_SUFFIX.get(Path(data_name(path)).suffix.lower())
    if resolved not in FORMATS:
        known = ", ".join(FORMAT_BY_SUFFIX)
        compressed = ", ".join(COMPRESSIONS)
        raise ImportFailed(
            f"cannot tell the format of {path.name} (known extensions: {known}, optionally compressed as"
            f" {compressed}); name it explicitly"
        )
    names = _column_names(columns, resolved)
    if delimiter == "\\t":  # what a shell passes for --delimiter '\t'
        delimiter = "\t"
    if delimiter is not None and len(delimiter) != 1:
        raise ImportFailed(f"the delimiter must be one character, not {delimiter!r}")
    return TabularFile(path, resolved, delimiter or DEFAULT_DELIMITERS.get(resolved, ","), encoding, names)


def _column_names(columns: Iterable[str] | None, file_format: str) -> tuple[str, ...] | None:
    if columns is None:
        return None
    if file_format == "jsonl":
        raise ImportFailed("JSON lines name their fields; column names are for CSV/TSV files without a header")
    names = tuple(name.strip() for name in columns)
    if not all(names) or len(set(names)) != len(names):
        raise ImportFailed(f"column names must be non-empty and distinct, not {','.join(names)!r}")
    return names


@contextmanager
def tabular_records(
    file: TabularFile, *, required_columns: Iterable[str], progress: ProgressFactory = no_progress
) -> Iterator[Iterator[TabularRecord]]:
    """Open ``file`` and yield its records; a CSV/TSV header lacking a required column fails the whole import."""
    try:
        with text_opened(file.path, encoding=file.encoding) as handle:
            lines = lines_tracked(handle, progress=progress, description=f"Parsing {file.path.name}")
            if file.format == "jsonl":
                yield json_records(lines)
                return
            header, records = delimited_records(lines, delimiter=file.delimiter, columns=file.columns)
            missing = [name for name in required_columns if name not in header]
            if missing:
                where = "the columns given" if file.columns else f"the header of {file.path.name}"
                raise ImportFailed(
                    f"{where} have no column {', '.join(map(repr, missing))} (columns: {', '.join(header)})"
                )
            yield records
    except UnicodeDecodeError as error:
        raise ImportFailed(f"{file.path.name} is not valid {file.encoding} text ({error.reason})") from None


# Interactions ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InteractionColumns:
    """Column (or JSON field) names. ``value=None`` reads a ``value`` column when there is one, else 1.0.

    ``timestamp=None``: the file has no times (see ``event_times_parse``).
    """

    user: str = "user"
    item: str = "item"
    timestamp: str | None = "timestamp"
    value: str | None = None
    kind: str | None = None
    event_id: str | None = None

    @property
    def required(self) -> list[str]:
        named = [self.user, self.item, self.timestamp, self.value, self.kind, self.event_id]
        return [name for name in named if name is not None]


EventTimes = datetime | str  # one fixed time, or ROW_ORDER


def event_times_parse(text: str) -> EventTimes:
    """``row-order`` or one ISO 8601 time (UTC when it has no offset), for files without a time column."""
    if text == ROW_ORDER:
        return ROW_ORDER
    try:
        return parse_timestamp(text)
    except InvalidField:
        raise ImportFailed(f"--timestamp must be {ROW_ORDER!r} or an ISO 8601 time, not {text!r}") from None


def interactions_parse(
    records: Iterable[TabularRecord],
    *,
    columns: InteractionColumns,
    kind: str = "view",
    times: EventTimes | None = None,
    id_prefix: str = "",
) -> Parsed[EventRow]:
    """Events from records; ``kind`` is used when ``columns.kind`` is None, ``times`` when ``columns.timestamp`` is."""

    def build(line: int, record: dict[str, Any]) -> EventRow:
        user = prefixed_id(id_prefix, record.get(columns.user), "user id")
        item = prefixed_id(id_prefix, record.get(columns.item), "item id")
        occurred_at = _event_time(line, record, columns.timestamp, times)
        event_kind = parse_kind(record.get(columns.kind)) if columns.kind else kind
        value = _event_value(record, columns.value)
        if columns.event_id:
            event_id = prefixed_id(id_prefix, record.get(columns.event_id), "event id")
        else:
            event_id = event_id_derive(user=user, item=item, kind=event_kind, occurred_at=occurred_at, value=value)
        return EventRow(user=user, item=item, occurred_at=occurred_at, kind=event_kind, value=value, event_id=event_id)

    # The builder needs each record's line number (for row-order times): records carry it along.
    numbered = ((line, record if isinstance(record, LineError) else (line, record)) for line, record in records)
    return rows_parse(numbered, lambda pair: build(*pair))


def prefixed_id(prefix: str, raw: object, name: str) -> str:
    """An external id behind ``prefix``; the prefixed id must still fit the id columns."""
    external_id = prefix + parse_id(raw, name)
    if len(external_id) > MAX_ID_LENGTH:
        raise InvalidField("invalid id", f"{name} with its prefix is longer than {MAX_ID_LENGTH} characters")
    return external_id


def _event_time(line: int, record: dict[str, Any], column: str | None, times: EventTimes | None) -> datetime:
    if column is not None:
        return parse_timestamp(record.get(column))
    if times == ROW_ORDER:
        return ROW_ORDER_ORIGIN + timedelta(seconds=line)
    if not isinstance(times, datetime):
        raise ImportFailed(f"the file has no time column: pass --timestamp {ROW_ORDER} or a fixed time")
    return times


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
    records: Iterable[TabularRecord],
    *,
    columns: ItemColumns,
    categories_separator: str = "|",
    id_prefix: str = "",
    category: str | None = None,
) -> Parsed[ItemRow]:
    """Items from records; ``category`` is added to every item's categories."""

    def build(record: dict[str, Any]) -> ItemRow:
        categories = _categories(record.get(columns.categories or "categories"), categories_separator)
        if category and category not in categories:
            categories.append(category)
        return ItemRow(
            external_id=prefixed_id(id_prefix, record.get(columns.id), "item id"),
            title=parse_text(record.get(columns.title or "title"), "title", max_length=TITLE_MAX_LENGTH),
            description=parse_text(record.get(columns.description or "description"), "description"),
            categories=categories,
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
