"""Serving from live history: the list follows the latest events, new users and sessions are served personally,
and items added after training are candidates only where the model can score them."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import EndUser, Interaction, Item, ItemEmbedding
from catalog.services import EventRow, ItemRow, interactions_ingest, items_upsert
from dashboards.services import account_create
from scenarios.models import Scenario
from tests.conftest import token_client
from tests.factories import clustered_catalog, scenario
from training.api.serializers import RecommendationResultSerializer
from training.embeddings_service import item_embeddings_refresh
from training.live import new_items_cache_clear, user_history
from training.models import RunStatus, TrainingRun
from training.services import training_run_create, training_run_execute, training_run_promote
from training.serving import (
    Recommendation,
    RecommendationResult,
    model_cache,
    recommendations_for_user,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/scenarios/movies/recommendations/"
SASREC = {"embedding_size": 16, "max_length": 8, "layers": 1, "epochs": 15, "batch_size": 16, "learning_rate": 0.01}
COMEDY = {f"i{n}" for n in range(10, 20)}  # the middle third of clustered_catalog's items


@pytest.fixture(autouse=True)
def _fresh_caches():
    model_cache.clear()
    new_items_cache_clear()
    yield
    model_cache.clear()
    new_items_cache_clear()


def _live(algorithm: str, **params) -> TrainingRun:
    run = training_run_create(scenario=scenario(algorithm=algorithm, hyperparameters=params))
    assert training_run_execute(run_id=run.pk, device="cpu") == RunStatus.SUCCEEDED
    run = TrainingRun.objects.get(pk=run.pk)
    training_run_promote(run=run)
    return run


def _later(user: str, items: list[str], kind: str = "rating") -> None:
    """Events after every training event, in the given order."""
    latest = Interaction.objects.latest("occurred_at").occurred_at
    interactions_ingest(
        events=[
            EventRow(user=user, item=item, kind=kind, value=5.0, occurred_at=latest + timedelta(minutes=order + 1))
            for order, item in enumerate(items)
        ]
    )


def _scores(body: dict) -> dict[str, float]:
    return {entry["item"]: entry["score"] for entry in body["items"]}


@pytest.mark.parametrize(("algorithm", "params"), [("ease", {}), ("sasrec", SASREC)])
def test_one_ingested_event_changes_the_list(api, algorithm, params):
    clustered_catalog()
    _live(algorithm, **params)
    before = api.get(URL, {"user": "u0", "k": 30}).json()  # u0 likes Action (i0-i9)
    unseen_comedy = sorted(COMEDY - set(_scores(before)) - _seen("u0"))[:1] or sorted(COMEDY - _seen("u0"))[:1]

    _later("u0", unseen_comedy)
    after = api.get(URL, {"user": "u0", "k": 30}).json()

    assert before["fallback"] is None and after["fallback"] is None
    assert after["history_events"] == min(before["history_events"] + 1, params.get("max_length", 500))
    unchanged_items = set(_scores(before)) - set(unseen_comedy)
    assert any(abs(_scores(before)[item] - _scores(after).get(item, 0.0)) > 1e-6 for item in unchanged_items)
    assert [entry["item"] for entry in before["items"][:10]] != [entry["item"] for entry in after["items"][:10]]


def _seen(user: str) -> set[str]:
    return set(Interaction.objects.filter(user__external_id=user).values_list("item__external_id", flat=True))


@pytest.mark.parametrize(
    ("algorithm", "params"), [("ease", {}), ("ials", {"factors": 8, "iterations": 5, "regularization": 1.0})]
)
def test_a_user_created_after_training_is_served_from_their_events(api, algorithm, params):
    clustered_catalog()
    _live(algorithm, **params)

    _later("newcomer", ["i10", "i11", "i12", "i13"])
    body = api.get(URL, {"user": "newcomer", "k": 5}).json()

    assert body["fallback"] is None and body["history_events"] == 4
    top = [entry["item"] for entry in body["items"]]
    assert len(top) == 5 and not {"i10", "i11", "i12", "i13"} & set(top)
    assert top[0] in COMEDY and len(COMEDY & set(top)) >= 3  # popularity alone would give a third of them


def test_a_user_without_events_gets_popularity_as_the_share_of_training_users(api):
    clustered_catalog()
    run = _live("ease")

    body = api.get(URL, {"user": "nobody-yet", "k": 30}).json()

    assert body["fallback"] == "popularity" and body["history_events"] == 0
    loaded = model_cache.get(run)
    best = loaded.item_popularity.max() / len(loaded.user_ids)  # training users who had the item / users
    assert body["items"][0]["score"] == pytest.approx(float(best))
    assert all(0.0 <= entry["score"] <= 1.0 for entry in body["items"])


def test_a_session_is_served_from_its_items(api):
    clustered_catalog()
    _live("ease")

    body = api.post(URL, {"items": ["i10", "i11", "i12"], "k": 5}, format="json").json()

    assert body["fallback"] is None and body["history_events"] == 3
    top = [entry["item"] for entry in body["items"]]
    assert len(top) == 5 and set(top) <= COMEDY - {"i10", "i11", "i12"}


def test_session_events_of_kinds_the_scenario_does_not_weigh_are_left_out(api):
    clustered_catalog()
    _live("ease")
    assert api.patch("/api/v1/scenarios/movies/", {"event_weights": {"rating": 1.0}}, format="json").status_code == 200

    body = api.post(URL, {"items": ["i10", "i11"], "kinds": ["rating", "click"]}, format="json").json()
    ignored = api.post(URL, {"items": ["i10", "i11"], "kinds": ["click", "click"]}, format="json").json()

    assert body["fallback"] is None and body["history_events"] == 1
    assert ignored["fallback"] == "popularity" and ignored["history_events"] == 0


def test_a_bad_session_is_a_400_naming_the_field(api):
    clustered_catalog()
    _live("ease")

    mismatched = api.post(URL, {"items": ["i10", "i11"], "kinds": ["click"]}, format="json")
    unknown = api.post(URL, {"items": ["i10", "no-such-item"]}, format="json")
    not_a_list = api.post(URL, {"items": "i10"}, format="json")

    assert mismatched.status_code == 400 and "kinds" in mismatched.json()["errors"]
    assert unknown.status_code == 400 and "no-such-item" in str(unknown.json()["errors"]["items"])
    assert not_a_list.status_code == 400 and "items" in not_a_list.json()["errors"]


def _new_item_like(existing: str) -> Item:
    """An item added after training, with the same text as ``existing``, and its text embedding stored."""
    source = Item.objects.get(external_id=existing)
    items_upsert(items=[ItemRow(external_id="new-one", title=source.title, categories=source.categories)])
    item = Item.objects.get(external_id="new-one")
    item_embeddings_refresh(item_ids=[item.pk])
    return item


def test_a_new_item_is_a_candidate_for_a_content_model(api):
    clustered_catalog()
    _live("content")
    _new_item_like("i15")

    body = api.get(URL, {"user": "u1", "k": 31}).json()  # u1 likes Comedy

    scores = _scores(body)
    assert body["fallback"] is None and body["new_items_excluded"] == 0
    assert "new-one" in scores
    if "i15" in scores:  # unseen by u1: the same text scores the same
        assert scores["new-one"] == pytest.approx(scores["i15"], abs=1e-5)


def test_a_new_item_is_excluded_and_counted_for_ease(api):
    clustered_catalog()
    _live("ease")
    _new_item_like("i15")

    body = api.get(URL, {"user": "u1", "k": 31}).json()
    session = api.post(URL, {"items": ["i15"], "k": 31}, format="json").json()

    assert body["new_items_excluded"] == 1 and "new-one" not in _scores(body)
    assert session["new_items_excluded"] == 1 and "new-one" not in _scores(session)


def test_an_item_created_after_a_request_is_embedded_and_served_at_the_next_by_a_content_model(
    api, django_capture_on_commit_callbacks
):
    clustered_catalog()
    _live("content")
    before = api.get(URL, {"user": "u1", "k": 31}).json()  # this process keeps its list of new items (none)
    item = {"external_id": "new-one", "title": "Item 15", "categories": ["Comedy"]}  # the text of i15, no vector

    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/api/v1/items/", item, format="json").status_code == 201
    body = api.get(URL, {"user": "u1", "k": 31}).json()

    assert before["new_items_excluded"] == 0 and "new-one" not in _scores(before)
    assert body["fallback"] is None and body["new_items_excluded"] == 0 and "new-one" in _scores(body)
    assert ItemEmbedding.objects.filter(item__external_id="new-one").exists()  # stored for every process
    if "i15" in _scores(body):
        assert _scores(body)["new-one"] == pytest.approx(_scores(body)["i15"], abs=1e-5)


def test_new_items_beyond_what_a_read_embeds_are_embedded_by_the_next_reads(
    api, django_capture_on_commit_callbacks, monkeypatch
):
    clustered_catalog()
    _live("content")
    items_upsert(items=[ItemRow(external_id=f"new-{n}", title=f"Item {n}") for n in range(3)])
    monkeypatch.setattr("training.live.NEW_ITEMS_EMBEDDED_PER_READ", 2)

    excluded = []
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):  # each read's stored vectors bump the version
            excluded.append(api.get(URL, {"user": "u1", "k": 40}).json()["new_items_excluded"])

    assert excluded == [1, 0, 0]
    assert ItemEmbedding.objects.filter(item__external_id__startswith="new-").count() == 3


def test_an_item_deactivated_after_a_request_is_left_out_at_the_next(api, django_capture_on_commit_callbacks):
    clustered_catalog()
    _live("ease")
    top = api.get(URL, {"user": "u1", "k": 5}).json()["items"][0]["item"]  # this process keeps the rules

    with django_capture_on_commit_callbacks(execute=True):
        assert api.patch(f"/api/v1/items/{top}/", {"is_active": False}, format="json").status_code == 200
    after = api.get(URL, {"user": "u1", "k": 5}).json()

    assert top not in _scores(after) and len(after["items"]) == 5


def test_an_item_renamed_after_a_request_is_served_under_its_new_name_at_the_next(
    api, django_capture_on_commit_callbacks
):
    clustered_catalog()
    _live("ease")
    top = api.get(URL, {"user": "u1", "k": 5}).json()["items"][0]  # this process keeps the items' names

    with django_capture_on_commit_callbacks(execute=True):
        assert api.patch(f"/api/v1/items/{top['item']}/", {"title": "Renamed"}, format="json").status_code == 200
    after = api.get(URL, {"user": "u1", "k": 5}).json()["items"][0]

    assert top["title"] != "Renamed" and after == {**top, "title": "Renamed"}


def test_a_content_prior_hybrid_serves_a_new_item_by_its_content(api):
    clustered_catalog()
    _live("sasrec", **SASREC, content="prior", prior_rank=8)
    _new_item_like("i15")

    body = api.get(URL, {"user": "u1", "k": 31}).json()
    session = api.post(URL, {"items": ["i10", "i11"], "k": 31}, format="json").json()

    assert body["new_items_excluded"] == 0 and "new-one" in _scores(body)
    assert session["new_items_excluded"] == 0 and "new-one" in _scores(session)


def test_an_item_created_after_a_request_is_counted_excluded_at_the_next_for_ease(
    api, django_capture_on_commit_callbacks
):
    clustered_catalog()
    _live("ease")
    assert api.get(URL, {"user": "u1"}).json()["new_items_excluded"] == 0

    with django_capture_on_commit_callbacks(execute=True):
        items_upsert(items=[ItemRow(external_id="new-one", title="Item 15")])
        event = EventRow(user="u1", item="new-two", kind="rating", value=5.0, occurred_at=timezone.now())
        interactions_ingest(events=[event])  # creates the item it names

    assert api.get(URL, {"user": "u1"}).json()["new_items_excluded"] == 2
    assert not ItemEmbedding.objects.filter(item__external_id__startswith="new-").exists()  # EASE reads no text


def test_the_history_and_the_seen_items_are_read_in_one_query_on_the_user_time_index():
    clustered_catalog()
    movies = scenario(event_weights={"rating": 1.0}, min_value=4.0)
    user = EndUser.objects.get(external_id="u3")
    Interaction.objects.filter(pk=Interaction.objects.filter(user=user).latest("occurred_at").pk).update(kind="click")

    with CaptureQueriesContext(connection) as queries:
        history = user_history(scenario=movies, user_external_id="u3", length=3)

    counted = Interaction.objects.filter(user=user, kind="rating", value__gte=4.0).order_by("-occurred_at")
    assert len(queries) == 1 and history.user_id == user.pk
    assert [event.item_id for event in history.events] == list(reversed(counted.values_list("item_id", flat=True)[:3]))
    assert set(history.seen_item_ids.tolist()) == set(user.interactions.values_list("item_id", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Interaction._meta.db_table}")  # the planner's statistics, as on a live table
        cursor.execute("SET LOCAL enable_seqscan = off")  # a table this small would be scanned whole
        cursor.execute("EXPLAIN " + queries[0]["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "interaction_user_time" in plan


def test_an_unknown_user_has_an_empty_history():
    clustered_catalog()

    history = user_history(scenario=scenario(), user_external_id="nobody", length=3)

    assert history.user_id is None and history.events == [] and len(history.seen_item_ids) == 0


def test_a_known_users_list_takes_one_query_once_the_model_and_the_names_are_kept():
    clustered_catalog()
    run = _live("ease")
    movies = Scenario.objects.select_related("live_run").get(pk=run.scenario_id)
    with CaptureQueriesContext(connection) as first:
        recommendations_for_user(scenario=movies, user_external_id="u3", k=5)  # loads the model, rules and names

    with CaptureQueriesContext(connection) as queries:
        result = recommendations_for_user(scenario=movies, user_external_id="u3", k=5)

    names = [query["sql"] for query in first if "title" in query["sql"]]
    assert len(names) == 1 and "description" not in names[0]  # the items' names alone, not whole rows
    assert len(queries) == 1 and len(result.items) == 5  # the history with the seen items
    assert not {item.external_id for item in result.items} & _seen("u3")


def test_a_clients_request_takes_one_query_once_the_model_is_loaded(django_capture_on_commit_callbacks):
    clustered_catalog()
    with django_capture_on_commit_callbacks(execute=True):  # the promotion's new serving version
        _live("ease")
    client = token_client(
        account_create(username="shop", password="shop-password-123", role="integration"), "recommend"
    )
    assert client.get(URL, {"user": "u3", "k": 5}).status_code == 200  # loads the model, the rules, the names

    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL, {"user": "u3", "k": 5})

    # The history with the seen items; the token, its account and the role's permissions are kept.
    assert response.status_code == 200 and len(queries) == 1, [query["sql"][:80] for query in queries]


def test_the_recommendation_answer_built_directly_is_the_serializers():
    for fallback, items in ((None, [Recommendation(3, "m3", "Film, the", 0.25)]), ("popularity", [])):
        result = RecommendationResult("abc", 7, "ease", fallback, items, history_events=4, new_items_excluded=2)

        assert RecommendationResultSerializer.represent(result) == RecommendationResultSerializer(result).data
