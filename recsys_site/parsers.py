"""Request parsing at the API's edge: JSON that PostgreSQL can store, and bodies of a bounded size.

PostgreSQL refuses NUL in ``text`` and ``jsonb`` (``\\u0000``), and UTF-8 cannot
encode a lone surrogate (``\\ud800``): either would fail deep in a write as a
500. Python's JSON decoder recurses, so a document nested thousands deep
raises ``RecursionError``. It also reads ``NaN`` and ``Infinity``, which are
no JSON, and numbers beyond a double's range as infinite, which PostgreSQL
cannot store in ``jsonb`` and no computation should see. Each is answered here
with a 400 naming where it stands before any view runs; a body over
``DATA_UPLOAD_MAX_MEMORY_SIZE`` is a 413.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from django.conf import settings
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

from recsys_site.errors import ValidationFailed

# Deep enough for any real attributes or context; shallow enough to render back without recursion trouble.
JSON_MAX_DEPTH = 64


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


def text_problem(text: str) -> str | None:
    """Why PostgreSQL could not store ``text``, or None."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate (\\ud800-\\udfff), which is not valid Unicode"
    return None


# In a UTF-8 body, NUL and lone surrogates reach decoded strings only through a \u escape or, for surrogates,
# their UTF-8 form (lead byte ED, which the decoder lets through); raw control characters are refused by it. A
# NUL byte also marks a UTF-16 or UTF-32 body. A body with none of these needs only its depth checked.
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def _plain(body: bytes) -> bool:
    """Whether ``body`` holds none of the bytes or escapes that could decode to unstorable text."""
    # Searching for single bytes is a fast scan; the regular expression runs only where a \u escape exists.
    if b"\x00" in body or b"\xed" in body:
        return False
    return b"\\u" not in body or _UNSTORABLE_ESCAPE.search(body) is None


def json_depth(body: bytes) -> int:
    """How deep a valid UTF-8 JSON document nests its arrays and objects, read from its bytes.

    Brackets count outside strings only. Removing the escapes ``\\\\`` and then ``\\"`` leaves every quote a
    string's start or end, so the quotes seen so far tell whether a byte is inside a string. Vectorised, this
    is a few milliseconds for a full batch of events where walking the decoded value takes tens.
    """
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    codes = np.frombuffer(body, dtype=np.uint8)
    outside = (np.cumsum(codes == ord('"'), dtype=np.int32) & 1) == 0
    step = (codes == ord("[")).view(np.int8) + (codes == ord("{")).view(np.int8)
    step -= (codes == ord("]")).view(np.int8) + (codes == ord("}")).view(np.int8)
    return int(np.cumsum(step * outside, dtype=np.int32).max(initial=0))


def json_problem(value: Any) -> str | None:
    """Why a decoded JSON value could not be stored: too deep, a key or string ``text_problem`` refuses, or a
    number beyond a double's range (NaN and Infinity included)."""
    found = json_problem_place(value)
    return None if found is None else found[1]


# Where a problem lies: the keys and list indexes leading to it from the document's top.
Place = tuple[str | int, ...]


def json_problem_place(value: Any) -> tuple[Place, str] | None:
    """``json_problem``, with the place of the value at fault (the top, for a document nested too deep)."""
    # A loop, not recursion: the value may be nested deeper than Python's stack. Each entry keeps its parent's
    # entry and its key there, so a place is put together only for the value at fault.
    stack: list[tuple[Any, int, tuple | None, str | int | None]] = [(value, 1, None, None)]
    while stack:
        entry = stack.pop()
        node, depth = entry[0], entry[1]
        if depth > JSON_MAX_DEPTH:
            return (), f"is nested deeper than {JSON_MAX_DEPTH} levels"
        children: Iterable[tuple[str | int, Any]] = ()
        if isinstance(node, str):
            problem = text_problem(node)
        elif isinstance(node, float | int):
            problem = None if -DOUBLE_MAX <= node <= DOUBLE_MAX else OUT_OF_RANGE  # NaN is within no range
        elif isinstance(node, dict):
            children = node.items()
            problem = next(filter(None, map(text_problem, node)), None)
            problem = problem and f"has a key that {problem}"
        elif isinstance(node, list):
            children, problem = enumerate(node), None
        else:
            continue
        if problem:
            return _place(entry), problem
        stack.extend((child, depth + 1, entry, key) for key, child in children)
    return None


# Any number beyond a double's range is refused, integers too: whatever reads it as a float would fail.
DOUBLE_MAX = sys.float_info.max
OUT_OF_RANGE = "is not a number within ±1.8e308 (NaN, Infinity and larger numbers cannot be stored)"


def _place(entry: tuple) -> Place:
    keys = []
    while entry[2] is not None:
        keys.append(entry[3])
        entry = entry[2]
    return tuple(reversed(keys))


class UnstorableJSON(ValueError):
    """A JSON document that decodes, holding a value that could not be stored at ``place``."""

    def __init__(self, problem: str, place: Place = ()) -> None:
        super().__init__(problem)
        self.problem = problem
        self.place = place


def json_loads(text: str | bytes) -> Any:
    """Decode JSON, raising ValueError for anything the decoder refuses, UnstorableJSON for what ``json_problem``
    refuses."""
    try:
        value, beyond_range = _decode(text)
    except RecursionError:
        raise UnstorableJSON(f"is nested deeper than {JSON_MAX_DEPTH} levels") from None
    if not beyond_range and isinstance(text, bytes) and _plain(text) and not _long_digit_run(text):
        if json_depth(text) > JSON_MAX_DEPTH:
            raise UnstorableJSON(f"is nested deeper than {JSON_MAX_DEPTH} levels")
        return value
    found = json_problem_place(value)
    if found:
        raise UnstorableJSON(found[1], found[0])
    return value


class _BeyondRange(Exception):
    pass


def _decode(text: str | bytes) -> tuple[Any, bool]:
    """The decoded document, and whether it holds NaN, Infinity or a fraction or exponent beyond a double's range."""
    try:
        return json.loads(text, parse_constant=_refuse_number, parse_float=_float_in_range), False
    except _BeyondRange:
        # Read again keeping such numbers (as NaN or ±inf), so that the walk says where the first stands.
        return json.loads(text, parse_constant=float), True


def _float_in_range(literal: str) -> float:
    number = float(literal)
    if math.isinf(number):
        raise _BeyondRange
    return number


def _refuse_number(literal: str) -> float:
    raise _BeyondRange


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")


def _long_digit_run(body: bytes) -> bool:
    """Whether ``body`` has a run of 309 digits, as an integer beyond a double's range has (floats are read by
    ``_float_in_range``)."""
    return b"0" * 309 in body.translate(_DIGITS_AS_ZERO)


def place_label(place: Place) -> str:
    """A place as a reader writes it: ``events[3].value``; the top of the document is ``the body``."""
    if not place:
        return "the body"
    return str(place[0]) + "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in place[1:])


def place_errors(place: Place, messages: list[str]) -> dict[str, Any]:
    """``messages`` nested as the document nests the place (indexes as text), as DRF nests a field's errors:
    ``{"events": {"3": {"value": [...]}}}``; the top of the document is ``non_field_errors``."""
    errors: Any = messages
    for key in reversed(place):
        errors = {str(key): errors}
    return errors if place else {"non_field_errors": messages}


class StorableJSONParser(JSONParser):
    """DRF's JSON parser, bounded in size and refusing what PostgreSQL cannot store."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if stream is None:
            return None
        # One byte past the limit tells a body over it from one that just fills it.
        body = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(body) > limit:
            raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
        try:
            return json_loads(body)
        except UnstorableJSON as error:
            sentence = f"JSON parse error - {place_label(error.place)} {error.problem}"
            raise ValidationFailed(
                sentence, detail={"detail": sentence, "errors": place_errors(error.place, [error.problem])}
            ) from None
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from None


class StorableJSONField(serializers.JSONField):
    """A JSON object (form posts send it as text) that PostgreSQL can store; never null."""

    default_error_messages = {"not_an_object": "Must be a JSON object.", "unstorable": "Value {problem}."}

    def to_internal_value(self, data: Any) -> Any:
        try:
            value = super().to_internal_value(data)
        except RecursionError:
            self.fail("unstorable", problem=f"is nested deeper than {JSON_MAX_DEPTH} levels")
        if not isinstance(value, dict):
            self.fail("not_an_object")
        problem = json_problem(value)
        if problem:
            self.fail("unstorable", problem=problem)
        return value
