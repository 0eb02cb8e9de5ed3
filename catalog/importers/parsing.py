"""Building blocks for reading import files: records, field parsers and line errors.

Everything here is pure (no database). A reader yields ``(line_number, record)``
pairs, where a record is a list of fields, a dict, or a :class:`LineError` when
the line could not even be split (wrong column count, invalid JSON).
:func:`rows_parse` turns records into rows with a builder that raises
:class:`InvalidField`, and collects every bad line instead of stopping at the first.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from recsys_site.errors import ValidationFailed

Row = TypeVar("Row")
Record = TypeVar("Record")

KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_ID_LENGTH = 255  # external_id and event_id columns


@dataclass(frozen=True)
class LineError:
    """Why one line of an input file was rejected.

    ``problem`` groups similar errors in summaries and ``message`` tells the reader what is wrong; ``source`` names
    the file of a dataset of several (``u.item``), and is empty for an import of one file.
    """

    line: int
    problem: str
    message: str
    source: str = ""

    def __str__(self) -> str:
        where = f"{self.source} line {self.line}" if self.source else f"line {self.line}"
        return f"{where}: {self.message}"


class InvalidField(ValueError):
    """Raised by field parsers; ``problem`` is the group, the message names the offending value."""

    def __init__(self, problem: str, message: str) -> None:
        super().__init__(message)
        self.problem = problem


class ImportFailed(ValidationFailed):
    """An import that wrote nothing: the input is unusable, or has bad lines and skipping was not asked for."""

    def __init__(self, message: str, *, line_errors: list[LineError] | None = None) -> None:
        self.line_errors = line_errors or []
        detail = {"errors": [str(error) for error in self.line_errors[:100]]} if self.line_errors else None
        super().__init__(message, detail=detail)

    @classmethod
    def for_lines(cls, line_errors: list[LineError]) -> ImportFailed:
        first, others = line_errors[0], len(line_errors) - 1
        more = f" (and {others} more invalid line{'s' if others != 1 else ''})" if others else ""
        return cls(f"{first}{more}; nothing was imported", line_errors=line_errors)


@dataclass
class Parsed(Generic[Row]):
    """Rows parsed from one file, the line each came from, and the lines that were rejected."""

    rows: list[Row] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)


def rows_parse(
    records: Iterable[tuple[int, Record | LineError]], build: Callable[[Record], Row], *, source: str = ""
) -> Parsed[Row]:
    """Apply ``build`` to every record; bad records become :class:`LineError` tagged with ``source``."""
    parsed: Parsed[Row] = Parsed()
    for line, record in records:
        if isinstance(record, LineError):
            parsed.errors.append(LineError(line, record.problem, record.message, source))
            continue
        try:
            row = build(record)
        except InvalidField as error:
            parsed.errors.append(LineError(line, error.problem, str(error), source))
        else:
            parsed.rows.append(row)
            parsed.lines.append(line)
    return parsed


# Readers ---------------------------------------------------------------------------------------------------------


def split_records(lines: Iterable[str], *, separator: str, width: int) -> Iterator[tuple[int, list[str] | LineError]]:
    """Lines of a plain separated file (no quoting, as in MovieLens' ``u.data`` and ``*.dat``); blank lines skipped."""
    for number, line in enumerate(lines, start=1):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        fields = text.split(separator)
        yield number, fields if len(fields) == width else _column_count_error(number, width, len(fields))


def delimited_records(
    lines: Iterable[str], *, delimiter: str, columns: Sequence[str] | None = None
) -> tuple[list[str], Iterator[tuple[int, dict[str, str] | LineError]]]:
    """The header of a CSV/TSV file, and its rows as dicts keyed by header names; blank lines skipped.

    With ``columns`` the file has no header line and these name its columns.
    Line numbers count physical lines (a header is line 1), so a quoted field
    spanning lines does not shift the numbers of later rows.
    """
    reader = csv.reader(lines, delimiter=delimiter)
    if columns is not None:
        return list(columns), _delimited_rows(reader, list(columns))
    header = next(reader, None)
    if not header:
        raise ImportFailed("the file is empty; a header line naming the columns is expected")
    header = [name.strip() for name in header]
    return header, _delimited_rows(reader, header)


def _delimited_rows(reader: Any, header: list[str]) -> Iterator[tuple[int, dict[str, str] | LineError]]:
    line_before = reader.line_num
    for fields in reader:
        number, line_before = line_before + 1, reader.line_num
        if not fields:
            continue
        if len(fields) != len(header):
            yield number, _column_count_error(number, len(header), len(fields))
        else:
            yield number, dict(zip(header, fields, strict=True))


def json_records(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | LineError]]:
    """Objects of a JSON-lines file; blank lines skipped."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            yield number, LineError(number, "invalid JSON", f"invalid JSON ({error.msg} at column {error.colno})")
            continue
        except RecursionError:
            yield number, LineError(number, "invalid JSON", "invalid JSON (nested too deep)")
            continue
        except ValueError:  # Python reads integers of at most 4,300 digits
            yield number, LineError(number, "invalid JSON", "invalid JSON (an integer of thousands of digits)")
            continue
        if isinstance(record, dict):
            yield number, record
        else:
            yield number, LineError(number, "invalid JSON", f"expected a JSON object, found {type(record).__name__}")


def _column_count_error(number: int, expected: int, found: int) -> LineError:
    return LineError(number, "wrong column count", f"expected {expected} columns, found {found}")


# Field parsers ---------------------------------------------------------------------------------------------------


def parse_id(raw: object, name: str) -> str:
    """An external id: a non-empty string (JSON integers accepted) of at most 255 characters."""
    if raw is None:
        raise InvalidField("missing field", f"missing {name}")
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise InvalidField("invalid id", f"{name} {raw!r} is not a string or an integer")
    text = str(raw).strip()
    if not text:
        raise InvalidField("empty id", f"empty {name}")
    if len(text) > MAX_ID_LENGTH:
        raise InvalidField("invalid id", f"{name} is longer than {MAX_ID_LENGTH} characters")
    return text


def parse_text(raw: object, name: str, *, max_length: int | None = None) -> str:
    """Optional free text: missing means empty."""
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise InvalidField("invalid text", f"{name} {raw!r} is not a string")
    text = raw.strip()
    if max_length is not None and len(text) > max_length:
        raise InvalidField("invalid text", f"{name} is longer than {max_length} characters")
    return text


def parse_number(raw: object, name: str) -> float:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise InvalidField("missing field", f"missing {name}")
    if isinstance(raw, bool):
        raise InvalidField("not a number", f"{name} {raw!r} is not a number")
    try:
        number = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidField("not a number", f"{name} {raw!r} is not a number") from None
    except OverflowError:  # an integer beyond a double's range, read from JSON
        number = math.inf
    if not math.isfinite(number):
        raise InvalidField("not a number", f"{name} {raw!r} is not a finite number")
    return number


def parse_kind(raw: object) -> str:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise InvalidField("missing field", "missing kind")
    if not isinstance(raw, str) or not KIND_PATTERN.match(raw.strip()):
        raise InvalidField("invalid kind", f"kind {raw!r} does not match {KIND_PATTERN.pattern}")
    return raw.strip()


def parse_timestamp(raw: object) -> datetime:
    """Unix seconds (a number, or a string of one) or ISO 8601; a naive ISO time is taken as UTC."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise InvalidField("missing field", "missing timestamp")
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return _from_unix(raw, raw)
    if not isinstance(raw, str):
        raise InvalidField("invalid timestamp", f"timestamp {raw!r} is neither unix seconds nor ISO 8601")
    text = raw.strip()
    try:
        seconds = float(text)
    except ValueError:
        return _from_iso(text)
    return _from_unix(seconds, raw)


def parse_unix_timestamp(raw: str) -> datetime:
    """Whole unix seconds, as MovieLens writes them."""
    try:
        seconds = int(raw)
    except ValueError:
        raise InvalidField("invalid timestamp", f"timestamp {raw!r} is not whole unix seconds") from None
    return _from_unix(seconds, raw)


def _from_unix(seconds: float, raw: object) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidField("invalid timestamp", f"timestamp {raw!r} is out of range for unix seconds") from None


def _from_iso(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidField("invalid timestamp", f"timestamp {text!r} is neither unix seconds nor ISO 8601") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
