"""Request parsing at the API's edge: JSON that PostgreSQL can store, and bodies of a bounded size.

PostgreSQL refuses NUL in ``text`` and ``jsonb`` (``\\u0000``), and UTF-8 cannot
encode a lone surrogate (``\\ud800``): either would fail deep in a write as a
500. Python's JSON decoder recurses, so a document nested thousands deep
raises ``RecursionError``. Each is answered here with a 400 before any view
runs; a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is a 413.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
from django.conf import settings
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

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
    """Why a decoded JSON value could not be stored: too deep, or a key or string ``text_problem`` refuses."""
    stack = [(value, 1)]  # a loop, not recursion: the value may be nested deeper than Python's stack
    while stack:
        node, depth = stack.pop()
        if depth > JSON_MAX_DEPTH:
            return f"is nested deeper than {JSON_MAX_DEPTH} levels"
        if isinstance(node, str):
            children: list = []
            problem = text_problem(node)
        elif isinstance(node, dict):
            children = list(node.values())
            problem = next(filter(None, map(text_problem, node)), None)
        elif isinstance(node, list):
            children, problem = node, None
        else:
            continue
        if problem:
            return problem
        stack.extend((child, depth + 1) for child in children)
    return None


def json_loads(text: str | bytes) -> Any:
    """Decode JSON, raising ValueError for anything ``json_problem`` or the decoder refuses."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError(f"nested deeper than {JSON_MAX_DEPTH} levels") from None
    if isinstance(text, bytes) and _plain(text):
        problem = f"is nested deeper than {JSON_MAX_DEPTH} levels" if json_depth(text) > JSON_MAX_DEPTH else None
    else:
        problem = json_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


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
