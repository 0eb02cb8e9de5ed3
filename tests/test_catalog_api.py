import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from catalog.api.serializers import _event_parse, _plain_event
from catalog.models import EndUser, Interaction, Item

pytestmark = pytest.mark.django_db
URL = "/api/v1/interactions/"


def _events(count: int, *, prefix: str = "e") -> list[dict]:
    return [
        {
            "user": f"u{n % 7}",
            "item": f"i{n % 11}",
            "kind": "click" if n % 2 else "view",
            "value": 1.0,
            "occurred_at": f"2024-03-01T10:{n % 60:02d}:00Z",
            "event_id": f"{prefix}{n}",
            "context": {"page": "home"},
        }
        for n in range(count)
    ]


def test_valid_batch_is_stored_with_users_and_items_created(api):
    response = api.post(URL, {"events": _events(50)}, format="json")

    assert response.status_code == 201, response.content
    assert response.json() == {"received": 50, "created": 50, "duplicates": 0, "users_created": 7, "items_created": 11}
    assert Interaction.objects.count() == 50
    stored = Interaction.objects.get(event_id="e3")
    assert (stored.user.external_id, stored.item.external_id, stored.kind) == ("u3", "i3", "click")
    assert stored.context == {"page": "home"}


def test_one_bad_event_rejects_the_whole_batch_and_names_it(api):
    events = _events(20)
    events[13]["occurred_at"] = "yesterday"
    events[17]["value"] = "lots"

    response = api.post(URL, {"events": events}, format="json")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"13", "17"}
    assert "occurred_at" in errors["13"] and "value" in errors["17"]
    assert Interaction.objects.count() == 0 and EndUser.objects.count() == 0 and Item.objects.count() == 0


def test_a_replayed_batch_adds_nothing(api):
    batch = {"events": _events(30)}
    api.post(URL, batch, format="json")

    replay = api.post(URL, batch, format="json")

    assert replay.status_code == 201
    assert replay.json()["created"] == 0 and replay.json()["duplicates"] == 30
    assert Interaction.objects.count() == 30


def test_repeated_event_id_within_a_batch_is_stored_once(api):
    events = _events(3)
    events[2]["event_id"] = events[0]["event_id"]

    response = api.post(URL, {"events": events}, format="json")

    assert response.json()["created"] == 2 and response.json()["duplicates"] == 1


def test_events_without_event_id_are_always_stored(api):
    events = _events(4)
    for event in events:
        del event["event_id"]
    api.post(URL, {"events": events}, format="json")
    api.post(URL, {"events": events}, format="json")
    assert Interaction.objects.count() == 8


def test_unknown_ids_are_rejected_when_create_missing_is_false(api):
    Item.objects.create(external_id="i0")
    EndUser.objects.create(external_id="u0")
    events = [
        {"user": "u0", "item": "i0", "occurred_at": 1_700_000_000},
        {"user": "u0", "item": "ghost", "occurred_at": 1_700_000_000},
    ]

    response = api.post(URL, {"events": events, "create_missing": False}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"1": {"item": ["unknown item 'ghost'"]}}
    assert Interaction.objects.count() == 0


def test_batch_larger_than_the_cap_is_refused(api, settings):
    from django.conf import settings as live_settings

    response = api.post(URL, {"events": _events(live_settings.INGEST_MAX_BATCH + 1)}, format="json")
    assert response.status_code == 400
    assert "at most" in response.json()["errors"]["events"][0]


def test_unauthenticated_requests_are_refused():
    client = APIClient()
    assert client.post(URL, {"events": _events(1)}, format="json").status_code in (401, 403)
    assert client.get("/api/v1/items/").status_code in (401, 403)
    assert Interaction.objects.count() == 0


def test_a_user_without_permission_can_read_but_not_ingest(reader_api):
    assert reader_api.get("/api/v1/items/").status_code == 200
    assert reader_api.post(URL, {"events": _events(1)}, format="json").status_code == 403
    assert Interaction.objects.count() == 0


def test_items_crud_by_external_id(api):
    created = api.post(
        "/api/v1/items/", {"external_id": "tt:0133093", "title": "The Matrix", "categories": ["Sci-Fi"]}, format="json"
    )
    assert created.status_code == 201, created.content

    api.patch("/api/v1/items/tt:0133093/", {"title": "The Matrix (1999)"}, format="json")
    fetched = api.get("/api/v1/items/tt:0133093/").json()
    assert fetched["title"] == "The Matrix (1999)" and fetched["categories"] == ["Sci-Fi"]

    assert api.get("/api/v1/items/", {"category": "Sci-Fi"}).json()["count"] == 1
    assert api.get("/api/v1/items/", {"category": "Drama"}).json()["count"] == 0
    assert api.delete("/api/v1/items/tt:0133093/").status_code == 204
    assert not Item.objects.exists()


def test_end_users_crud_and_duplicate_external_id_is_400(api):
    assert (
        api.post("/api/v1/end-users/", {"external_id": "u1", "attributes": {"age": 30}}, format="json").status_code
        == 201
    )
    duplicate = api.post("/api/v1/end-users/", {"external_id": "u1"}, format="json")
    assert duplicate.status_code == 400 and "external_id" in duplicate.json()["errors"]


def test_list_pages_are_capped(api, settings):
    settings.API_MAX_PAGE_SIZE = 12  # below the 30 items, so an uncapped page would show
    Item.objects.bulk_create([Item(external_id=f"i{n}") for n in range(30)])

    page = api.get("/api/v1/items/", {"page_size": 1000}).json()
    assert page["count"] == 30 and len(page["results"]) == 12
    small = api.get("/api/v1/items/", {"page_size": 7}).json()
    assert len(small["results"]) == 7 and small["next"]


def test_interactions_list_filters_by_user(api):
    api.post(URL, {"events": _events(21)}, format="json")
    listed = api.get(URL, {"user": "u3", "page_size": 100}).json()
    assert len(listed["results"]) == 3
    assert {row["user"] for row in listed["results"]} == {"u3"}


def test_users_and_items_created_by_a_batch_have_the_models_defaults(api):
    Item.objects.create(external_id="i3", title="Kept", categories=["Drama"])

    response = api.post(URL, {"events": _events(20)}, format="json")

    assert response.json()["items_created"] == 10 and response.json()["users_created"] == 7
    assert Item.objects.get(external_id="i3").title == "Kept"
    created = Item.objects.get(external_id="i4")
    assert (created.title, created.description, created.categories, created.attributes, created.is_active) == (
        "",
        "",
        [],
        {},
        True,
    )
    assert created.created_at and created.updated_at and EndUser.objects.get(external_id="u2").attributes == {}


_ODD_VALUES = [
    None, True, 0, -1, 7, 2**70, 10**400, -(10**400), 1.5, float("nan"), float("inf"), 1e300,
    "", " ", "\t", "u1", "x" * 255, "x" * 256, "view", "Rating", "2024-03-01T10:00:00Z", "e\x001",
    {}, {"page": "home"}, [], ["a"],
]  # fmt: skip
_FIELDS = ["user", "item", "kind", "value", "occurred_at", "context", "event_id", "extra"]
_VALID = {"user": "u1", "item": "i1", "kind": "view", "value": 2.5, "occurred_at": 1_700_000_000, "event_id": "e1"}
# A valid event with some fields replaced or removed: most examples stay close to what clients send.
_raw_events = st.builds(
    lambda changed, removed: {key: value for key, value in {**_VALID, **changed}.items() if key not in removed},
    st.dictionaries(st.sampled_from(_FIELDS), st.sampled_from(_ODD_VALUES), max_size=3),
    st.sets(st.sampled_from(_FIELDS), max_size=2),
)


def _assert_read_alike(raw: dict) -> None:
    _event_parse(_VALID)  # the full reading has seen the kind "view" valid, as after a batch's first event
    fast = _plain_event(raw)
    if fast is not None:
        assert _event_parse(raw) == (fast, {}), raw


def test_the_fast_reading_of_an_event_reads_every_single_change_alike():
    for field in _FIELDS:
        _assert_read_alike({key: value for key, value in _VALID.items() if key != field})
        for value in _ODD_VALUES:
            _assert_read_alike({**_VALID, field: value})


@hypothesis_settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=_raw_events)
def test_the_fast_reading_of_an_event_accepts_only_what_the_full_reading_accepts_and_reads_it_alike(raw):
    _assert_read_alike(raw)
