from datetime import UTC, datetime, timedelta

import pytest

from catalog.models import EndUser, Interaction, Item
from scenarios.models import Scenario

pytestmark = pytest.mark.django_db
URL = "/api/v1/scenarios/"


def _scenario(**overrides) -> dict:
    return {"slug": "movies", "name": "Movies", "algorithm": "popularity", **overrides}


def test_create_fills_hyperparameter_defaults(api):
    response = api.post(URL, _scenario(), format="json")

    assert response.status_code == 201, response.content
    assert response.json()["hyperparameters"] == {"weighted": False}
    assert Scenario.objects.get(slug="movies").k_list == [5, 10, 20]


def test_bad_hyperparameter_is_a_400_naming_the_field(api):
    response = api.post(URL, _scenario(hyperparameters={"weighted": "sometimes", "depth": 3}), format="json")

    assert response.status_code == 400
    body = response.json()["errors"]
    assert body["hyperparameters.weighted"] == ["must be true or false"]
    assert "unknown hyperparameter" in body["hyperparameters.depth"][0]
    assert not Scenario.objects.exists()


@pytest.mark.parametrize(
    ("algorithm", "hyperparameters", "field"),
    [
        ("sasrec", {"embedding_size": 30, "heads": 4}, "heads"),
        ("distill", {"embedding_size": 16, "tail_size": 16}, "tail_size"),
    ],
)
def test_hyperparameters_are_checked_together_too(api, algorithm, hyperparameters, field):
    response = api.post(URL, _scenario(algorithm=algorithm, hyperparameters=hyperparameters), format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [f"hyperparameters.{field}"]
    assert not Scenario.objects.exists()


def test_unknown_algorithm_is_refused(api):
    response = api.post(URL, _scenario(algorithm="deep-magic"), format="json")
    assert response.status_code == 400
    assert "unknown algorithm 'deep-magic'" in response.json()["errors"]["algorithm"][0]


def test_update_is_validated_against_the_stored_algorithm(api):
    api.post(URL, _scenario(), format="json")
    response = api.patch(f"{URL}movies/", {"hyperparameters": {"weighted": 7}}, format="json")
    assert response.status_code == 400 and "hyperparameters.weighted" in response.json()["errors"]
    assert Scenario.objects.get().hyperparameters == {"weighted": False}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"k_list": []}, "k_list"),
        ({"k_list": [0, 10]}, "k_list"),
        ({"event_weights": {"Bad Kind": 1}}, "event_weights"),
        ({"event_weights": {"click": -1}}, "event_weights"),
        ({"include_categories": ["Drama"], "exclude_categories": ["Drama"]}, "exclude_categories"),
        ({"validation_share": 0.5, "test_share": 0.45}, "test_share"),
        ({"split": "random", "test_share": 0}, "test_share"),
        ({"split": "sideways"}, "split"),
        ({"default_k": 0}, "default_k"),
    ],
)
def test_invalid_protocol_and_slice_settings_are_refused(api, overrides, field):
    response = api.post(URL, _scenario(**overrides), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]


def test_a_scenario_cannot_become_its_own_ancestor(api):
    api.post(URL, _scenario(slug="all", name="All"), format="json")
    api.post(URL, _scenario(slug="drama", name="Drama", parent="all"), format="json")
    response = api.patch(f"{URL}all/", {"parent": "drama"}, format="json")
    assert response.status_code == 400 and "ancestor" in response.json()["errors"]["parent"][0]


def test_slice_size_applies_categories_kinds_threshold_and_minimum_counts(api):
    drama = Item.objects.create(external_id="d1", categories=["Drama"])
    drama2 = Item.objects.create(external_id="d2", categories=["Drama", "Romance"])
    Item.objects.create(external_id="c1", categories=["Comedy"])
    start = datetime(2024, 1, 1, tzinfo=UTC)
    users = [EndUser.objects.create(external_id=f"u{n}") for n in range(3)]
    rows = [
        (users[0], drama, "rating", 5),
        (users[0], drama2, "rating", 4),
        (users[1], drama, "rating", 4),
        (users[1], drama2, "rating", 1),  # low rating dropped
        (users[2], drama, "click", 1),  # kind not weighted by the scenario
    ]
    for offset, (user, item, kind, value) in enumerate(rows):
        Interaction.objects.create(
            user=user, item=item, kind=kind, value=value, occurred_at=start + timedelta(days=offset)
        )
    api.post(
        URL,
        _scenario(include_categories=["Drama"], event_weights={"rating": 1.0}, min_value=3, min_user_events=2),
        format="json",
    )

    size = api.get(f"{URL}movies/slice/").json()

    # u1 keeps one event after the threshold, below min_user_events=2, so only u0 remains.
    assert (size["users"], size["items"], size["events"]) == (1, 2, 2)
    assert size["first_event_at"].startswith("2024-01-01")


def test_algorithms_endpoint_describes_hyperparameters(api):
    algorithms = {entry["name"]: entry for entry in api.get("/api/v1/algorithms/").json()}
    assert algorithms["popularity"]["params"][0]["name"] == "weighted"
    assert algorithms["popularity"]["params"][0]["type"] == "bool"


def test_reader_cannot_create_scenarios(reader_api):
    assert reader_api.post(URL, _scenario(), format="json").status_code == 403
