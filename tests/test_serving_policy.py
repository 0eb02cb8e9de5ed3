"""The serving policy: validated like the rest of the scenario, applied to every served list, shown and edited."""

from collections import Counter
from datetime import UTC, datetime

import pytest
from django.test import TestCase

from catalog.models import Item
from dashboards.services import account_create
from scenarios.models import Scenario
from tests.factories import clustered_catalog, live_run, scenario
from training.serving import model_cache

pytestmark = pytest.mark.django_db
URL = "/api/v1/scenarios/movies/"
RECOMMEND = "/api/v1/scenarios/movies/recommendations/"
GROUP = {"Action": range(0, 10), "Comedy": range(10, 20), "Drama": range(20, 30)}  # clustered_catalog's thirds


@pytest.fixture
def live(api):
    """A catalogue of three categories with a live EASE model; users u0, u3, … prefer Action."""
    model_cache.clear()
    clustered_catalog()
    run = live_run(scenario(algorithm="ease"), "ease")
    yield run
    model_cache.clear()


def _policy(api, **policy) -> None:
    with TestCase.captureOnCommitCallbacks(execute=True):  # as committed: the serving version changes
        response = api.patch(URL, {"serving_policy": policy}, format="json")
    assert response.status_code == 200, response.content


def _served(api, user: str = "u0", k: int = 10) -> list[int]:
    body = api.get(RECOMMEND, {"user": user, "k": k}).json()
    return [int(item["item"][1:]) for item in body["items"]]


def _category(number: int) -> str:
    return next(name for name, numbers in GROUP.items() if number in numbers)


@pytest.mark.parametrize(
    ("policy", "field", "message"),
    [
        ({"max_per_category": 0}, "serving_policy.max_per_category", "between 1 and 1000"),
        ({"max_per_category": "3"}, "serving_policy.max_per_category", "whole number"),
        ({"boost_categories": {"Action": 2}}, "serving_policy.boost_categories", "between -1 and 1"),
        ({"boost_categories": ["Action"]}, "serving_policy.boost_categories", "category → weight"),
        ({"boost_categories": {"Actoin": 0.5}}, "serving_policy.boost_categories", "did you mean Action"),
        ({"exclude_categories": ["Dramma"]}, "serving_policy.exclude_categories", "did you mean Drama"),
        ({"exclude_items": ["i1", "nope"]}, "serving_policy.exclude_items", "unknown items: nope"),
        ({"exclude_older_than": "2024-13-01"}, "serving_policy.exclude_older_than", "YYYY-MM-DD"),
        ({"diversity": 3}, "serving_policy", "unknown keys 'diversity'"),
    ],
)
def test_a_bad_policy_is_a_400_naming_the_rule_and_nothing_is_saved(api, policy, field, message):
    clustered_catalog()
    scenario()

    response = api.patch(URL, {"serving_policy": policy}, format="json")

    assert response.status_code == 400, response.content
    assert message in " ".join(response.json()["errors"][field])
    assert Scenario.objects.get(slug="movies").serving_policy == {}


def test_a_policy_that_is_not_an_object_is_a_400(api):
    scenario()
    response = api.patch(URL, {"serving_policy": ["exclude_items"]}, format="json")
    assert response.status_code == 400 and "serving_policy" in response.json()["errors"]


def test_excluded_items_and_categories_are_never_served(api, live):
    before = _served(api, k=20)
    assert any(n in GROUP["Action"] for n in before)
    banned = next(n for n in before if n in GROUP["Comedy"] or n in GROUP["Drama"])

    _policy(api, exclude_categories=["Action"], exclude_items=[f"i{banned}"])

    after = _served(api, k=20)
    assert after and not any(n in GROUP["Action"] for n in after) and banned not in after


def test_at_most_n_items_of_a_category_are_in_a_list(api, live):
    api.patch(URL, {"exclude_seen": False}, format="json")  # the Action items u0 has seen stay candidates
    assert Counter(_category(n) for n in _served(api, k=9))["Action"] > 3

    _policy(api, max_per_category=3)

    served = _served(api, k=9)
    assert len(served) == 9 and set(Counter(_category(n) for n in served).values()) == {3}


def test_a_boosted_category_comes_first_and_a_buried_one_last(api, live):
    assert _category(_served(api)[0]) == "Action"

    _policy(api, boost_categories={"Drama": 1, "Action": -1})

    served = _served(api, k=20)
    categories = [_category(n) for n in served]
    drama = categories.count("Drama")
    assert drama and categories[:drama] == ["Drama"] * drama
    assert "Action" not in categories[: len(categories) - categories.count("Action")]
    body = api.get(RECOMMEND, {"user": "u0", "k": 20}).json()
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True) and max(scores) <= 2.0 and min(scores) >= -1.0


def test_items_added_before_the_date_are_not_served(api, live):
    Item.objects.filter(external_id__in=[f"i{n}" for n in range(15)]).update(
        created_at=datetime(2020, 6, 1, tzinfo=UTC)
    )

    _policy(api, exclude_older_than="2021-01-01")

    served = _served(api, k=20)
    assert served and all(n >= 15 for n in served)


def test_similar_items_follow_the_policy(api, live):
    similar = api.get("/api/v1/scenarios/movies/items/i3/similar/", {"k": 5}).json()["items"]
    assert any(int(item["item"][1:]) in GROUP["Action"] for item in similar)

    _policy(api, exclude_categories=["Action"])

    similar = api.get("/api/v1/scenarios/movies/items/i3/similar/", {"k": 5}).json()["items"]
    assert similar and not any(int(item["item"][1:]) in GROUP["Action"] for item in similar)


def test_the_policy_is_edited_in_the_form_and_shown_on_the_scenario_page(client):
    clustered_catalog()
    scenario()
    account_create(username="anna", password="analyst-pass-123", role="analyst")
    client.login(username="anna", password="analyst-pass-123")
    form = client.get("/scenarios/movies/edit/").context["form"]
    data = {name: value for name, value in form.initial.items() if value is not None and name != "parent"}
    data.update(
        k_list="5, 10",
        policy_exclude_items="i1, i2",
        policy_max_per_category="2",
        policy_boost_categories="Comedy:0.5, Action:-1",
        policy_exclude_older_than="2024-02-01",
    )

    response = client.post("/scenarios/movies/edit/", data)

    assert response.status_code == 302, response.context["form"].errors
    assert Scenario.objects.get(slug="movies").serving_policy == {
        "exclude_items": ["i1", "i2"],
        "max_per_category": 2,
        "boost_categories": {"Comedy": 0.5, "Action": -1.0},
        "exclude_older_than": "2024-02-01",
    }
    page = client.get("/scenarios/movies/").content.decode()
    assert "at most 2 per category" in page and "bury Action" in page and "never items i1, i2" in page
    edit = client.get("/scenarios/movies/edit/").content.decode()
    assert 'value="Action:-1, Comedy:0.5"' in edit  # PostgreSQL's jsonb keeps keys in its own order


def test_a_bad_weight_in_the_form_is_shown_beside_its_input(client):
    clustered_catalog()
    scenario()
    account_create(username="anna", password="analyst-pass-123", role="analyst")
    client.login(username="anna", password="analyst-pass-123")
    data = {
        name: value
        for name, value in client.get("/scenarios/movies/edit/").context["form"].initial.items()
        if value is not None and name != "parent"
    }
    data.update(k_list="5, 10", policy_boost_categories="Comedy:3")

    response = client.post("/scenarios/movies/edit/", data)

    assert response.status_code == 200
    assert "between -1 and 1" in " ".join(response.context["form"].errors["policy_boost_categories"])
    assert Scenario.objects.get(slug="movies").serving_policy == {}
