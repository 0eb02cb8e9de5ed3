"""The pages of the newer kinds of runs, read as an analyst: a study, an auto run's choice, a rating run and a
blend. Every chart is drawn by the served bundle and has a CSV, no Python repr shows, promoting a study's best
trial asks for a reason like any promotion, and bad query parameters are never a 500."""

import csv
import io
import json
import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

from scenarios.models import Scenario
from tests.conftest import queued_runs_execute, run_trained
from tests.factories import clustered_catalog, scenario
from tests.pages import assert_no_python_repr, charts_with_working_csv, visible_text
from training.models import Study
from training.tuning.studies import study_create

pytestmark = pytest.mark.django_db


def _bundle_traces() -> set[str]:
    """The trace types the served plotly.js bundle registers (a figure of another type stays blank)."""
    bundle = Path(str(finders.find("plotly/plotly-cartesian.min.js"))).read_text()
    return set(re.findall(r'moduleType:"trace",name:"(\w+)"', bundle))


@pytest.fixture
def pages(client, admin_user):
    """A study of EASE and item-kNN, an auto run, a blend of two runs and a rating run."""
    clustered_catalog()
    movies = scenario(algorithm="ease")
    ease, knn = run_trained(movies, "ease"), run_trained(movies, "item_knn")
    blend = run_trained(movies, "blend", members=[ease, knn])
    auto = run_trained(movies, "auto", params={"max_trials": 3})
    study = study_create(scenario=movies, algorithms=["ease", "item_knn"], max_trials=4, parallel_trials=1)
    queued_runs_execute()
    study.refresh_from_db()
    ratings = scenario(slug="ratings", name="Ratings", objective="rating", algorithm="biased_mf",
                       hyperparameters={"factors": 4, "iterations": 5})  # fmt: skip
    rating = run_trained(ratings, "biased_mf")
    client.force_login(admin_user)
    return {"client": client, "study": study, "auto": auto, "blend": blend, "rating": rating}


def _urls(pages) -> list[str]:
    return [
        f"/studies/{pages['study'].pk}/",
        f"/runs/{pages['auto'].pk}/",
        f"/runs/{pages['blend'].pk}/",
        f"/runs/{pages['rating'].pk}/",
        "/scenarios/ratings/",
        "/scenarios/ratings/runs/",
        "/scenarios/movies/",
    ]


def test_the_newer_pages_show_no_python_repr(pages):
    assert_no_python_repr(pages["client"], _urls(pages))


def test_the_study_page_loads_the_served_bundle_and_draws_only_what_it_holds(pages):
    page = pages["client"].get(f"/studies/{pages['study'].pk}/").content.decode()

    assert pages["study"].status == "succeeded"
    assert "plotly/plotly-cartesian.min.js" in page and "plotly/plotly.min.js" not in page
    drawn = re.findall(r'<script type="application/json" data-plotly-figure="[\w-]+">(.*?)</script>', page, re.S)
    types = {trace.get("type", "scatter") for figure in drawn for trace in json.loads(figure)["figure"]["data"]}
    assert types and types <= _bundle_traces(), types
    assert 'id="history"' in page and 'id="slices"' in page


def test_every_chart_of_the_newer_pages_has_a_working_csv(pages):
    assert charts_with_working_csv(pages["client"], _urls(pages)) >= 6


def test_the_study_csv_has_a_row_per_trial_with_its_searched_values(pages):
    study = pages["study"]
    response = pages["client"].get(f"/studies/{study.pk}/", {"export": "trials"})

    header, *rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert header[:5] == ["trial", "run", "algorithm", "status", f"validation {study.objective}"]
    assert len(rows) == study.trials.count() == 4
    assert {"l2", "k"} <= set(header)


def test_promoting_a_studys_best_trial_needs_a_reason_and_keeps_it(pages, api):
    study, client = pages["study"], pages["client"]
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert re.search(r'<input [^>]*name="reason"[^>]*required[^>]*data-testid="study-promote-reason"', page)

    refused = client.post(f"/studies/{study.pk}/promote/", {"force": "1", "reason": " "}, follow=True)
    assert "give a reason" in visible_text(refused.content.decode())
    assert not study.scenario.promotions.exists()

    client.post(f"/studies/{study.pk}/promote/", {"force": "1", "reason": "best of the study"})
    promotion = study.scenario.promotions.get()
    assert promotion.run_id == Study.objects.get(pk=study.pk).best_run_id and promotion.reason == "best of the study"

    study.scenario.promotions.all().delete()
    Scenario.objects.filter(pk=study.scenario_id).update(live_run=None)  # as before the promotion
    response = api.post(f"/api/v1/studies/{study.pk}/promote/", {"force": True, "reason": "by API"}, format="json")
    assert response.status_code == 201 and study.scenario.promotions.get().reason == "by API"


def test_the_auto_run_names_its_candidates_and_the_rating_run_its_errors(pages):
    auto = visible_text(pages["client"].get(f"/runs/{pages['auto'].pk}/").content.decode())
    rating = visible_text(pages["client"].get(f"/runs/{pages['rating'].pk}/").content.decode())

    assert f"Chose run {pages['auto'].chosen_run_id}" in re.sub(r"\s+", " ", auto)
    assert re.search(r"RMSE \d\.\d{4}, MAE \d\.\d{4}", rating)


@pytest.mark.parametrize(
    "url",
    [
        "/studies/{study}/?export=nonsense",
        "/runs/{auto}/?export=nonsense",
        "/scenarios/ratings/?metric=%7B%27x%27%7D",
        "/scenarios/ratings/runs/?sort=metric:rmse&order=sideways&params=%00",
    ],
)
def test_a_bad_query_parameter_on_the_newer_pages_is_never_a_500(pages, url):
    response = pages["client"].get(url.format(study=pages["study"].pk, auto=pages["auto"].pk))

    assert response.status_code in (200, 400)


def test_a_rating_scenario_charts_rmse_by_default_and_shows_it_beside_each_run(pages):
    client, rating = pages["client"], pages["rating"]
    ratings = client.get("/scenarios/ratings/").content.decode()
    movies = client.get("/scenarios/movies/").content.decode()
    polled = client.get("/scenarios/ratings/runs.json").json()["runs"]

    assert re.search(r"<option selected>rmse</option>", ratings) and re.search(r"<option\s*>mae</option>", ratings)
    assert "rmse of succeeded runs over time" in ratings
    assert f'<td data-field="rmse">{rating.metrics["rmse"]:.4f}</td>' in ratings
    assert ">rmse</option>" not in movies and '<td data-field="rmse">' not in movies
    Scenario.objects.filter(slug="ratings").update(live_run=rating)
    listing = visible_text(client.get("/scenarios/").content.decode())
    assert f"RMSE {rating.metrics['rmse']:.4f}" in listing
    assert polled[0]["rmse"] == rating.metrics["rmse"]


def _figures(page: str) -> dict[str, dict]:
    scripts = re.findall(r'<script type="application/json" data-plotly-figure="([\w-]+)">(.*?)</script>', page, re.S)
    return {name: json.loads(payload)["figure"] for name, payload in scripts}


def test_the_study_charts_fit_the_page_and_count_trials_in_whole_numbers(pages):
    figures = _figures(pages["client"].get(f"/studies/{pages['study'].pk}/").content.decode())

    assert all("width" not in figure["layout"] for figure in figures.values())  # no fixed width to scroll past
    assert figures["history"]["layout"]["xaxis"]["dtick"] == 1


def test_a_blend_names_its_members_with_their_weights(pages):
    blend = pages["blend"]
    members = list(blend.members.order_by("pk"))
    text = re.sub(r"\s+", " ", visible_text(pages["client"].get(f"/runs/{blend.pk}/").content.decode()))

    weights = [blend.history[-1][f"weight_{n}"] for n in (1, 2)]
    for member, weight in zip(members, weights, strict=True):
        assert f"run {member.pk} ({member.algorithm}) × {weight:.2f}" in text
    assert "weight_1" not in text


def test_an_auto_run_points_to_its_candidates_curves_instead_of_an_empty_one(pages):
    text = re.sub(r"\s+", " ", visible_text(pages["client"].get(f"/runs/{pages['auto'].pk}/").content.decode()))

    assert "No epochs recorded" not in text
    assert "An auto run trains no model itself" in text
    assert "searched hyperparameters" not in text


def test_the_runs_table_of_a_rating_scenario_sorts_by_rmse_and_exports_it(pages):
    client, rating = pages["client"], pages["rating"]
    page = client.get("/scenarios/ratings/runs/").content.decode()
    exported = client.get("/scenarios/ratings/runs/", {"export": "csv"}).content.decode()

    assert 'data-sort="metric:rmse"' in page and 'data-sort="metric:mae"' in page
    header, row = list(csv.reader(io.StringIO(exported)))
    assert float(row[header.index("rmse")]) == pytest.approx(rating.metrics["rmse"])
