"""The API's edge: every bad input is a 4xx with a JSON message, and nothing is stored."""

import json
from urllib.parse import quote

import pytest

from catalog.models import EndUser, Interaction, Item
from scenarios.models import Scenario
from training.models import TrainingRun

pytestmark = pytest.mark.django_db
EVENTS = "/api/v1/interactions/"


def _event(**overrides) -> dict:
    return {"user": "u1", "item": "i1", "occurred_at": "2024-03-01T10:00:00Z", **overrides}


def _assert_json_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    return body


@pytest.mark.parametrize(("url", "format"), [("/api/v1/items/", "multipart"), ("/api/v1/end-users/", "multipart")])
def test_null_attributes_in_a_form_post_is_a_400(api, url, format):
    response = api.post(url, {"external_id": "x1", "attributes": "null"}, format=format)

    body = _assert_json_error(response, 400)
    assert "attributes" in body["errors"]
    assert not Item.objects.exists() and not EndUser.objects.exists()


def test_a_seed_beyond_32_bits_is_a_400(api):
    Scenario.objects.create(slug="movies", name="Movies", algorithm="popularity")

    response = api.post("/api/v1/scenarios/movies/runs/", {"seed": 2**31}, format="json")

    body = _assert_json_error(response, 400)
    assert "seed" in body["errors"]
    assert not TrainingRun.objects.exists()


def test_deleting_a_parent_scenario_is_a_409_naming_its_children(api):
    parent = Scenario.objects.create(slug="movies", name="Movies", algorithm="popularity")
    Scenario.objects.create(slug="comedies", name="Comedies", algorithm="popularity", parent=parent)

    response = api.delete("/api/v1/scenarios/movies/")

    body = _assert_json_error(response, 409)
    assert "Comedies" in body["detail"]
    assert Scenario.objects.count() == 2


def test_an_offset_beyond_postgresql_range_is_read_as_the_same_instant(api):
    response = api.post(EVENTS, {"events": [_event(occurred_at="2024-03-01T10:00:00+20:00")]}, format="json")

    assert response.status_code == 201, response.content
    assert Interaction.objects.get().occurred_at.isoformat() == "2024-02-29T14:00:00+00:00"


@pytest.mark.parametrize(
    ("url", "name"),
    [(EVENTS, "occurred_before"), (EVENTS, "occurred_after"), ("/api/v1/items/", "updated_after")],
)
def test_filters_accept_any_offset_python_reads(api, url, name):
    assert api.get(url, {name: "2024-03-01T10:00:00+20:00"}).status_code == 200
    _assert_json_error(api.get(url, {name: "0001-01-01T00:00:00+01:00"}), 400)


@pytest.mark.parametrize(
    "event",
    [
        _event(user="u\x001"),
        _event(item="\ud800"),
        _event(event_id="e\x00"),
        _event(context={"page": "a\x00b"}),
        _event(context={"k\x00": 1}),
        _event(context={"page": ["\udfff"]}),
    ],
)
def test_nul_bytes_and_lone_surrogates_are_a_400(api, event):
    body = json.dumps({"events": [event]})  # json.dumps escapes both as \u sequences, as a client would

    response = api.post(EVENTS, body, content_type="application/json")

    _assert_json_error(response, 400)
    assert not Interaction.objects.exists() and not EndUser.objects.exists()


def test_nul_bytes_in_form_attributes_are_a_400(api):
    response = api.post("/api/v1/items/", {"external_id": "x1", "attributes": '{"a": "\\u0000"}'}, format="multipart")

    _assert_json_error(response, 400)
    assert not Item.objects.exists()


def test_nul_byte_in_an_address_is_a_404(api):
    _assert_json_error(api.get("/api/v1/items/a%00b/"), 404)


@pytest.mark.parametrize("url", [EVENTS, "/api/v1/scenarios/", "/api/v1/items/"])
def test_json_nested_thousands_deep_is_a_400(api, url):
    body = '{"events": ' + "[" * 5000 + "]" * 5000 + "}"

    _assert_json_error(api.post(url, body, content_type="application/json"), 400)


def test_deep_json_in_form_attributes_is_a_400(api):
    deep = "[" * 5000 + "]" * 5000
    response = api.post("/api/v1/items/", {"external_id": "x1", "attributes": deep}, format="multipart")

    _assert_json_error(response, 400)
    assert not Item.objects.exists()


def test_a_full_batch_of_events_with_context_fits_the_body_limit(api):
    events = [
        _event(user=f"user-{n % 300}", item=f"item-{n % 500}", event_id=f"event-{n:08d}", context=_CONTEXT)
        for n in range(10_000)
    ]

    body = json.dumps({"events": events})
    assert len(body) > 2.5 * 2**20  # Django's default limit would refuse it

    response = api.post(EVENTS, body, content_type="application/json")

    assert response.status_code == 201, response.content[:300]
    assert Interaction.objects.count() == 10_000


_CONTEXT = {
    "page": "home/recommended",
    "position": 12,
    "session": "3f2b9c1e-58aa-4bd0-9c0f-1d2e3f4a5b6c",
    "referrer": "https://shop.example.com/category/outdoor/tents?sort=popular",
    "device": "mobile",
}


def test_a_body_beyond_the_limit_is_a_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"events": [_event(context={"pad": "x" * 2000})]})

    _assert_json_error(api.post(EVENTS, body, content_type="application/json"), 413)
    assert not Interaction.objects.exists()


@pytest.mark.parametrize("external_id", ["a\nb", "tab\tid", "x?y#z%20", "."])
@pytest.mark.parametrize(("collection", "model"), [("items", Item), ("end-users", EndUser)])
def test_any_ingested_id_can_be_read_and_deleted(api, collection, model, external_id):
    key = "user" if model is EndUser else "item"
    api.post(EVENTS, {"events": [_event(**{key: external_id})]}, format="json")
    address = f"/api/v1/{collection}/{quote(external_id, safe='')}/"

    assert api.get(address).json()["external_id"] == external_id
    assert api.delete(address).status_code == 204
    assert not model.objects.filter(external_id=external_id).exists()


def test_an_address_outside_every_route_is_a_json_404(api):
    _assert_json_error(api.get("/api/v1/no-such-collection/"), 404)


@pytest.mark.parametrize(("collection", "model"), [("items", Item), ("end-users", EndUser)])
def test_an_ingested_id_with_a_slash_can_be_read_and_deleted(api, collection, model):
    api.post(EVENTS, {"events": [_event(user="shop/42", item="sku/a/7")]}, format="json")
    external_id = "shop/42" if model is EndUser else "sku/a/7"
    address = f"/api/v1/{collection}/{external_id.replace('/', '%2F')}/"

    assert api.get(address).json()["external_id"] == external_id
    assert api.delete(address).status_code == 204
    assert not model.objects.filter(external_id=external_id).exists()


def test_unknown_ids_with_create_missing_off_answer_detail_and_errors(api):
    response = api.post(EVENTS, {"events": [_event()], "create_missing": False}, format="json")

    body = _assert_json_error(response, 400)
    assert body["errors"] == {"0": {"user": ["unknown user 'u1'"], "item": ["unknown item 'i1'"]}}
    assert "unknown" in body["detail"]


def test_a_given_but_invalid_value_is_not_called_missing(api):
    events = [_event(user=["u1"], occurred_at="yesterday"), {"item": "i1"}]

    errors = _assert_json_error(api.post(EVENTS, {"events": events}, format="json"), 400)["errors"]

    assert errors["0"]["user"][0].startswith("must be ") and errors["0"]["occurred_at"][0].startswith("must be ")
    assert errors["1"]["user"][0].startswith("required: ") and errors["1"]["occurred_at"][0].startswith("required: ")


@pytest.mark.parametrize(
    ("method", "url", "payload", "status"),
    [
        ("get", "/api/v1/items/ghost/", None, 404),
        ("post", "/api/v1/scenarios/", {"slug": "x"}, 400),
        ("post", EVENTS, {"events": "none"}, 400),
        ("patch", "/api/v1/items/", {}, 405),
    ],
)
def test_every_error_has_a_detail_and_an_errors_map(api, method, url, payload, status):
    body = _assert_json_error(getattr(api, method)(url, payload, format="json"), status)
    assert isinstance(body["errors"], dict)


def test_an_unauthenticated_request_has_the_same_error_format(client):
    body = _assert_json_error(client.get("/api/v1/items/"), 401)
    assert body["errors"] == {}


def test_null_attributes_in_a_urlencoded_post_is_a_400(api):
    response = api.post(
        "/api/v1/end-users/", "external_id=x1&attributes=null", content_type="application/x-www-form-urlencoded"
    )

    assert "attributes" in _assert_json_error(response, 400)["errors"]
    assert not EndUser.objects.exists()


@pytest.mark.parametrize(
    ("url", "name"),
    [(EVENTS, "user"), (EVENTS, "event_id"), (EVENTS, "kind"), ("/api/v1/items/", "category")],
)
def test_a_nul_byte_in_a_filter_is_a_400(api, url, name):
    _assert_json_error(api.get(url, {name: "a\x00b"}), 400)


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=B"])
def test_a_form_body_beyond_the_limit_is_a_413(api, settings, content_type):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    if content_type.startswith("multipart"):
        body = f'--B\r\nContent-Disposition: form-data; name="external_id"\r\n\r\n{"x" * 2000}\r\n--B--\r\n'
    else:
        body = "external_id=" + "x" * 2000

    _assert_json_error(api.post("/api/v1/items/", body, content_type=content_type), 413)
    assert not Item.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        '{"events": [{"user": "u1", "item": "\ud800", "occurred_at": 1}]}'.encode("utf-8", "surrogatepass"),
        '{"events": [{"user": "u1", "item": "\ud800", "occurred_at": 1}]}'.encode("utf-16-le", "surrogatepass"),
        b'{"events": [{"user": "u1", "item": "i1", "occurred_at": 1, "context": ' + b'{"a": ' * 64 + b"1" + b"}" * 65,
    ],
    ids=["utf8-encoded-surrogate", "utf16-encoded-surrogate", "too-deep-without-escapes"],
)
def test_unstorable_text_written_without_escapes_is_a_400(api, body):
    response = api.post(EVENTS, body, content_type="application/json")

    _assert_json_error(response, 400)
    assert not Interaction.objects.exists() and not EndUser.objects.exists()


HUGE = "1" + "0" * 400  # 10**400: an integer Python reads, beyond a double's range


def _batch_written(field: str, literal: str) -> str:
    """Two events, the second's ``field`` written as ``literal``: a JSON text json.dumps would not write."""
    events = [_event(event_id="e0"), _event(event_id="e1", **{field: "LITERAL"})]
    return json.dumps({"events": events}).replace('"LITERAL"', literal)


@pytest.mark.parametrize(
    ("field", "literal", "where"),
    [
        ("value", HUGE, "value"),
        ("value", "-" + HUGE, "value"),
        ("value", HUGE + ".5", "value"),
        ("value", "1e400", "value"),
        ("value", "-1.5E+309", "value"),
        ("value", "1" * 250 + "e99", "value"),
        ("value", "NaN", "value"),
        ("value", "Infinity", "value"),
        ("value", "-Infinity", "value"),
        ("occurred_at", HUGE, "occurred_at"),
        ("occurred_at", "1e400", "occurred_at"),
        ("occurred_at", "NaN", "occurred_at"),
        ("context", '{"scores": [1, 1e400]}', "context.scores[1]"),
        ("context", '{"score": NaN}', "context.score"),
    ],
)
def test_a_number_beyond_a_doubles_range_is_a_400_naming_the_event_and_field(api, field, literal, where):
    response = api.post(EVENTS, _batch_written(field, literal), content_type="application/json")

    body = _assert_json_error(response, 400)
    assert f"events[1].{where} is not a number within ±1.8e308" in body["detail"]
    errors: object = ["is not a number within ±1.8e308 (NaN, Infinity and larger numbers cannot be stored)"]
    for key in reversed(["events", "1", *where.replace("[", ".").rstrip("]").split(".")]):
        errors = {key: errors}
    assert body["errors"] == errors
    assert not Interaction.objects.exists() and not EndUser.objects.exists() and not Item.objects.exists()


@pytest.mark.parametrize("literal", ["1e308", "-1.7976931348623157e308", "1.5e-300", "1e-400", "1" * 250])
def test_a_number_within_a_doubles_range_written_long_is_stored(api, literal):
    response = api.post(EVENTS, _batch_written("value", literal), content_type="application/json")

    assert response.status_code == 201, response.content
    assert Interaction.objects.get(event_id="e1").value == float(literal)


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/items/", '{"external_id": "x1", "attributes": {"w": NaN}}', "attributes"),
        ("/api/v1/end-users/", '{"external_id": "x1", "attributes": {"w": 1e400}}', "attributes"),
        ("/api/v1/items/", '{"external_id": ' + HUGE + "}", "external_id"),
        ("/api/v1/scenarios/", '{"slug": "x", "name": "X", "event_weights": {"view": Infinity}}', "event_weights"),
    ],
)
def test_numbers_beyond_a_doubles_range_in_other_bodies_are_a_400_naming_the_field(api, url, body, field):
    response = api.post(url, body, content_type="application/json")

    assert field in _assert_json_error(response, 400)["errors"]
    assert not Item.objects.exists() and not EndUser.objects.exists() and not Scenario.objects.exists()


@pytest.mark.parametrize("attributes", ['{"w": NaN}', '{"w": 1e400}', '{"w": ' + HUGE + "}"])
def test_numbers_beyond_a_doubles_range_in_form_attributes_are_a_400(api, attributes):
    response = api.post("/api/v1/items/", {"external_id": "x1", "attributes": attributes}, format="multipart")

    assert "attributes" in _assert_json_error(response, 400)["errors"]
    assert not Item.objects.exists()


@pytest.mark.parametrize("k", [HUGE, "-1", "0", "1001", "ten", "1e400", "NaN", "Infinity", "2.5", "9" * 5000])
@pytest.mark.parametrize("path", ["recommendations/?user=u1&", "items/i1/similar/?"])
def test_a_bad_k_in_a_query_is_a_400_naming_it(api, path, k):
    Scenario.objects.create(slug="movies", name="Movies", algorithm="popularity")

    response = api.get(f"/api/v1/scenarios/movies/{path}k={k}")

    assert "k" in _assert_json_error(response, 400)["errors"]


@pytest.mark.parametrize("k", [HUGE, "1e400", "NaN", "-Infinity", '"ten"', "-1"])
def test_a_bad_k_in_a_session_body_is_a_400_naming_it(api, k):
    Scenario.objects.create(slug="movies", name="Movies", algorithm="popularity")
    body = '{"items": ["i1"], "k": ' + k + "}"

    response = api.post("/api/v1/scenarios/movies/recommendations/", body, content_type="application/json")

    assert "k" in _assert_json_error(response, 400)["errors"]


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("user=&items=", {"user", "items"}),
        ("user=u1&items=", {"items"}),
        ("user=u1&items=,,", {"items"}),
        (f"user={HUGE}&items={HUGE}", {"user", "items"}),
        ("user=u1&items=" + ",".join(str(n) for n in range(1001)), {"items"}),
        ("items=i1", {"user"}),
    ],
)
def test_bad_prediction_queries_are_a_400_naming_the_fields(api, query, fields):
    Scenario.objects.create(slug="movies", name="Movies", algorithm="popularity")

    response = api.get(f"/api/v1/scenarios/movies/predictions/?{query}")

    assert set(_assert_json_error(response, 400)["errors"]) == fields


@pytest.mark.parametrize(
    ("url", "content_type", "body"),
    [
        (
            "/api/v1/scenarios/movies/recommendations/",
            "application/x-www-form-urlencoded",
            "&".join(f"f{n}=1" for n in range(1001)),
        ),
        ("/api/v1/items/", "application/x-www-form-urlencoded", "&".join(f"f{n}=1" for n in range(1001))),
        (
            "/api/v1/items/",
            "multipart/form-data; boundary=B",
            "".join(f'--B\r\nContent-Disposition: form-data; name="f{n}"\r\n\r\n1\r\n' for n in range(1001))
            + "--B--\r\n",
        ),
    ],
)
def test_a_form_with_too_many_fields_is_a_json_400(api, url, content_type, body):
    _assert_json_error(api.post(url, body, content_type=content_type), 400)
    assert not Item.objects.exists() and not Interaction.objects.exists()
