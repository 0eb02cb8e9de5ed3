"""The scenario form: every error on the first submit, in words a reader knows, and nothing saved."""

import re
from html import unescape

import pytest

from scenarios.models import Scenario
from tests.factories import clustered_catalog, scenario, scenario_form

pytestmark = pytest.mark.django_db


def _form(**overrides) -> dict:
    return scenario_form("sasrec", {"embedding_size": "64"}, **overrides)


def _text(response) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())))


def test_hyperparameter_errors_show_on_the_first_submit_beside_other_errors(analyst):
    response = analyst.post("/scenarios/new/", _form(hp__sasrec__embedding_size="0", k_list="five"))

    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="error-k_list"' in page and 'data-testid="hp-error-embedding_size"' in page
    assert not Scenario.objects.exists()


def test_the_error_summary_names_fields_by_their_labels(analyst):
    response = analyst.post("/scenarios/new/", _form(hp__sasrec__embedding_size="0"))

    summary = re.search(r'data-testid="form-errors">(.*?)</div>\s*\n', response.content.decode(), re.S)
    assert summary is not None
    text = unescape(summary.group(1))
    assert "hyperparameters.embedding_size" not in text
    assert "embedding size" in text and "must be at least" in text


def test_an_event_weight_written_with_equals_explains_the_format(analyst):
    response = analyst.post("/scenarios/new/", _form(event_weights="rating=1"))

    text = _text(response)
    assert "is not a valid event kind" not in text
    assert "kind:weight" in text and "rating:1" in text
    assert not Scenario.objects.exists()


def test_an_unknown_category_is_refused_with_close_matches(analyst):
    clustered_catalog()

    response = analyst.post("/scenarios/new/", _form(include_categories="Comdy, Drama"))

    assert response.status_code == 200
    text = _text(response)
    assert "Comdy" in text and "did you mean Comedy" in text
    assert not Scenario.objects.exists()


def test_the_api_refuses_an_unknown_category_with_a_400(api):
    clustered_catalog()

    response = api.post(
        "/api/v1/scenarios/",
        {"slug": "films", "name": "Films", "algorithm": "popularity", "exclude_categories": ["drama"]},
        format="json",
    )

    assert response.status_code == 400
    assert "Drama" in response.json()["errors"]["exclude_categories"][0]
    assert not Scenario.objects.exists()


def test_known_categories_are_accepted(api):
    clustered_catalog()

    response = api.post(
        "/api/v1/scenarios/",
        {"slug": "films", "name": "Films", "algorithm": "popularity", "include_categories": ["Action", "Drama"]},
        format="json",
    )

    assert response.status_code == 201, response.content


def test_the_form_has_a_cancel_link_back(analyst):
    scenario()

    new = analyst.get("/scenarios/new/").content.decode()
    edit = analyst.get("/scenarios/movies/edit/").content.decode()

    assert re.search(r'<a [^>]*href="/scenarios/"[^>]*>Cancel</a>', new)
    assert re.search(r'<a [^>]*href="/scenarios/movies/"[^>]*>Cancel</a>', edit)


def _offered(page: str, select: str) -> set[str]:
    """The values of a select's options a reader can pick (neither hidden nor disabled)."""
    menu = re.search(rf'<select name="{select}"[^>]*>(.*?)</select>', page, re.S)
    assert menu is not None
    options = re.findall(r"<option ([^>]*)>", menu.group(1))
    return {
        re.search(r'value="([^"]*)"', attrs).group(1)
        for attrs in options
        if not re.search(r"\b(hidden|disabled)\b", attrs)
    }


def test_the_algorithm_menu_offers_only_the_models_that_fit_the_objective(analyst):
    scenario(slug="rated", objective="rating", algorithm="biased_mf")

    new = _offered(analyst.get("/scenarios/new/").content.decode(), "algorithm")
    rated = _offered(analyst.get("/scenarios/rated/edit/").content.decode(), "algorithm")

    assert rated == {"biased_mf", "neural_mf", "auto"}
    assert {"ease", "sasrec", "auto"} <= new and not new & {"biased_mf", "neural_mf"}


@pytest.mark.parametrize(("objective", "algorithm"), [("", "biased_mf"), ("rating", "ease")])
def test_a_model_that_does_not_fit_the_objective_is_an_error_on_the_algorithm(analyst, objective, algorithm):
    response = analyst.post("/scenarios/new/", scenario_form(algorithm, {}, objective=objective))

    assert response.status_code == 200
    errors = re.findall(r'data-testid="error-algorithm">([^<]*)<', response.content.decode())
    assert errors and "ratings" in unescape(errors[0])
    assert not Scenario.objects.exists()
