"""The JSON edge of the API: nesting depth read from a body's bytes agrees with the decoded value, and every number
beyond a double's range is found however it is written."""

import json
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog.models import Interaction
from recsys_site.parsers import JSON_MAX_DEPTH, UnstorableJSON, json_depth, json_loads

EVENTS = "/api/v1/interactions/"


def _decoded_depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_decoded_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_decoded_depth, value), default=0)
    return 0


# Strings full of what could fool a byte scan: brackets, quotes, backslashes, and text beyond ASCII.
_text = st.text(alphabet=st.sampled_from('[]{}"\\\\/ aé€\n'), max_size=8)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=30,
)


@given(value=_json, ascii_only=st.booleans())
def test_depth_read_from_the_bytes_is_the_depth_of_the_value(value, ascii_only):
    body = json.dumps(value, ensure_ascii=ascii_only).encode()

    assert json_depth(body) == _decoded_depth(value)


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (rb'{"a": "]]]]"}', 1),
        (rb'{"a": "\"]]"}', 1),
        (rb'{"a": "\\"}', 1),
        (rb'[["\\\\\"[[", "\\\\"], {"b\\\\": []}]', 3),
        (b"7", 0),
    ],
)
def test_brackets_and_escaped_quotes_inside_strings_do_not_count(body, depth):
    assert json_depth(body) == depth


@pytest.mark.django_db
def test_an_event_whose_strings_hold_closing_brackets_is_still_refused_when_too_deep(api):
    closers = '"' + "]}" * 40 + '\\"' + "]" * 40 + '"'
    context = "1"
    for _ in range(JSON_MAX_DEPTH):
        context = '{"k": ' + closers + ', "a": ' + context + "}"
    body = '{"events": [{"user": "u1", "item": "i1", "occurred_at": 1, "context": ' + context + "}]}"

    response = api.post(EVENTS, body.encode(), content_type="application/json")

    assert response.status_code == 400, response.content
    assert "nested deeper" in response.json()["detail"]
    assert not Interaction.objects.exists()


@pytest.mark.django_db
def test_an_event_as_deep_as_allowed_with_brackets_in_its_strings_is_stored(api):
    openers = '"' + "[{" * 40 + '\\"' + "[" * 40 + '"'
    context = "1"
    for _ in range(JSON_MAX_DEPTH - 3):  # the body, the events list and the event make three levels
        context = '{"k": ' + openers + ', "a": ' + context + "}"
    body = '{"events": [{"user": "u1", "item": "i1", "occurred_at": 1, "context": ' + context + "}]}"

    response = api.post(EVENTS, body.encode(), content_type="application/json")

    assert response.status_code == 201, response.content
    assert Interaction.objects.count() == 1


# JSON numbers as written: any sign, integer part, fraction and exponent (leading zeros and a sign included).
_number_literals = st.builds(
    lambda sign, whole, fraction, exponent: f"{sign}{whole}{fraction}{exponent}",
    st.sampled_from(["", "-"]),
    st.integers(min_value=0, max_value=10**6) | st.integers(min_value=190, max_value=320).map(lambda n: "9" * n),
    st.sampled_from(["", ".0", ".5", ".000001"]),
    st.just("")
    | st.builds(
        lambda e, sign, zeros, digits: f"{e}{sign}{'0' * zeros}{digits}",
        st.sampled_from("eE"),
        st.sampled_from(["", "+", "-"]),
        st.integers(min_value=0, max_value=2),
        st.integers(min_value=0, max_value=500),
    ),
)
# Where a number can stand: at the top, first or later in a list, as a value, with or without spaces.
_places = st.sampled_from(
    ["N", " N", "[N]", "[1,N]", "[1, \n N]", '{"a": N}', '{"a":N}', '{"a": "9e123", "b": N}', '["a\\"9e123", N]']
)


@given(literal=_number_literals, place=_places)
def test_every_number_beyond_a_doubles_range_is_refused_and_no_other(literal, place):
    number = json.loads(literal)
    beyond = not -sys.float_info.max <= number <= sys.float_info.max
    body = place.replace("N", literal).encode()

    if beyond:
        with pytest.raises(UnstorableJSON, match="not a number within"):
            json_loads(body)
    else:
        assert json_loads(body) == json.loads(body)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_saying_where(literal):
    with pytest.raises(UnstorableJSON) as refused:
        json_loads(('{"events": [{}, {"value": ' + literal + "}]}").encode())

    assert refused.value.place == ("events", 1, "value")
