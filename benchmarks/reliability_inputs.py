"""The bad inputs that once answered 500 (issue 29, then numbers beyond a double's range), as a table: each is
sent once by ``benchmarks.reliability``, which counts the answers of 5xx. The fixtures it builds hold the scenarios
``movies`` (with a live run) and ``group`` (named as its group by ``member``). Imported after ``django.setup()``
(multipart bodies need the settings)."""

import json
from collections.abc import Callable
from dataclasses import dataclass

from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

EVENTS = "/api/v1/interactions/"
USERS = "/api/v1/end-users/"
ITEMS = "/api/v1/items/"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
CONTEXT = {
    "page": "home/recommended",
    "position": 12,
    "session": "3f2b9c1e-58aa-4bd0-9c0f-1d2e3f4a5b6c",
    "referrer": "https://shop.example.com/category/outdoor/tents?sort=popular",
    "device": "mobile",
}


@dataclass(frozen=True)
class BadInput:
    name: str
    method: str
    path: str
    body: str | bytes | dict | Callable[[], str | bytes] | None = None
    content_type: str = JSON


def _event(**overrides) -> dict:
    return {"user": "fuzz-u1", "item": "fuzz-i1", "occurred_at": "2024-03-01T10:00:00Z", **overrides}


def _events(*events: dict) -> str:
    return json.dumps({"events": list(events)})  # escapes NUL and lone surrogates as \u sequences, as clients do


def _event_written(field: str, literal: str) -> str:
    """A batch of one event whose ``field`` is the literal ``literal`` (NaN, 1e400: json.dumps writes neither)."""
    return _events(_event(**{field: "LITERAL"})).replace('"LITERAL"', literal)


def _multipart(fields: dict) -> bytes:
    return encode_multipart(BOUNDARY, fields)


def _full_batch() -> str:
    return _events(
        *(
            _event(user=f"batch-u{n % 300}", item=f"batch-i{n % 500}", event_id=f"batch-{n:08d}", context=CONTEXT)
            for n in range(10_000)
        )
    )


def _beyond_limit() -> str:
    return _events(_event(context={"pad": "x" * (17 * 2**20)}))


DEEP = "[" * 5000 + "]" * 5000
NULL_ATTRIBUTES = {"external_id": "x1", "attributes": "null"}
NUL_ATTRIBUTES = {"external_id": "x1", "attributes": '{"a": "\\u0000"}'}
DEEP_ATTRIBUTES = {"external_id": "x1", "attributes": DEEP}
NAN_ATTRIBUTES = {"external_id": "x1", "attributes": '{"w": NaN}'}
MULTIPART = MULTIPART_CONTENT

BAD_INPUTS: tuple[BadInput, ...] = (
    BadInput("item: attributes=null, multipart", "POST", ITEMS, _multipart(NULL_ATTRIBUTES), MULTIPART),
    BadInput("end user: attributes=null, multipart", "POST", USERS, _multipart(NULL_ATTRIBUTES), MULTIPART),
    BadInput("end user: attributes=null, urlencoded", "POST", USERS, "external_id=x&attributes=null", FORM),
    BadInput("item: NUL in form attributes", "POST", ITEMS, _multipart(NUL_ATTRIBUTES), MULTIPART),
    BadInput("item: form attributes nested 5000 deep", "POST", ITEMS, _multipart(DEEP_ATTRIBUTES), MULTIPART),
    BadInput("delete a scenario named as a group", "DELETE", "/api/v1/scenarios/group/"),
    BadInput("run seed 2^31", "POST", "/api/v1/scenarios/movies/runs/", {"seed": 2**31}),
    BadInput("run seed 2^63", "POST", "/api/v1/scenarios/movies/runs/", {"seed": 2**63}),
    BadInput("event offset +20:00", "POST", EVENTS, _events(_event(occurred_at="2024-03-01T10:00:00+20:00"))),
    BadInput("offset -23:59", "POST", EVENTS, _events(_event(occurred_at="2024-03-01T10:00-23:59", event_id="z"))),
    BadInput("occurred_before offset +20:00", "GET", EVENTS + "?occurred_before=2024-03-01T10:00:00%2B20:00"),
    BadInput("occurred_after year 1 +01:00", "GET", EVENTS + "?occurred_after=0001-01-01T00:00:00%2B01:00"),
    BadInput("updated_after offset +20:00", "GET", "/api/v1/items/?updated_after=2024-03-01T10:00:00%2B20:00"),
    BadInput("NUL in an event's user", "POST", EVENTS, _events(_event(user="u\x001"))),
    BadInput("lone surrogate in an event's item", "POST", EVENTS, _events(_event(item="\ud800"))),
    BadInput("NUL in an event id", "POST", EVENTS, _events(_event(event_id="e\x00"))),
    BadInput("NUL in a context key", "POST", EVENTS, _events(_event(context={"k\x00": 1}))),
    BadInput("lone surrogate in context", "POST", EVENTS, _events(_event(context={"page": ["\udfff"]}))),
    BadInput("event value 10^400", "POST", EVENTS, _event_written("value", "1" + "0" * 400)),
    BadInput("event value 1e400", "POST", EVENTS, _event_written("value", "1e400")),
    BadInput("event value NaN", "POST", EVENTS, _event_written("value", "NaN")),
    BadInput("event occurred_at -Infinity", "POST", EVENTS, _event_written("occurred_at", "-Infinity")),
    BadInput("event occurred_at 10^400", "POST", EVENTS, _event_written("occurred_at", "1" + "0" * 400)),
    BadInput("1e400 in context", "POST", EVENTS, _event_written("context", '{"score": 1e400}')),
    BadInput("item: NaN in attributes", "POST", ITEMS, '{"external_id": "x1", "attributes": {"w": NaN}}'),
    BadInput("item: NaN in form attributes", "POST", ITEMS, _multipart(NAN_ATTRIBUTES), MULTIPART),
    BadInput("recommendations k=10^400", "GET", "/api/v1/scenarios/movies/recommendations/?user=1&k=1" + "0" * 400),
    BadInput("predictions without user or items", "GET", "/api/v1/scenarios/movies/predictions/?user=&items="),
    BadInput("NUL in an address", "GET", "/api/v1/items/a%00b/"),
    BadInput("NUL in a filter", "GET", EVENTS + "?user=a%00b"),
    BadInput("events nested 5000 deep", "POST", EVENTS, '{"events": ' + DEEP + "}"),
    BadInput("scenario nested 5000 deep", "POST", "/api/v1/scenarios/", '{"slug": ' + DEEP + "}"),
    BadInput("10,000 events with context (accepted)", "POST", EVENTS, _full_batch),
    BadInput("body over the limit", "POST", EVENTS, _beyond_limit),
    BadInput("invalid JSON", "POST", EVENTS, '{"events": [}'),
    BadInput("ids holding slashes, ingested", "POST", EVENTS, _events(_event(user="shop/42", item="sku/a/7"))),
    BadInput("an id holding a slash, read", "GET", "/api/v1/end-users/shop%2F42/"),
    BadInput("an id holding a slash, deleted", "DELETE", "/api/v1/items/sku%2Fa%2F7/"),
    BadInput("an end user, deleted", "DELETE", "/api/v1/end-users/batch-u7/"),
    BadInput("a scenario with a live run, deleted", "DELETE", "/api/v1/scenarios/movies/"),
)  # fmt: skip
