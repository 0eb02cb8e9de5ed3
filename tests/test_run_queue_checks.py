"""What can be known before training is checked when a run is queued: nothing that will fail or mislead is queued.

Each test names the finding it guards: hyperparameter overrides, parent compatibility, slice size, the K list,
evidence strength and stable scenario identity.
"""

import json
import os
import subprocess
import sys

import pytest
from django.test import override_settings

from catalog.services import EventRow, interactions_ingest
from recsys_site.errors import Conflict, ValidationFailed
from scenarios.services import scenario_create, scenario_schedule_get, scenario_schedule_set, scenario_update
from tests.factories import START, clustered_catalog, scenario, succeeded
from training.models import RunStatus, TrainingRun
from training.services import training_run_create, training_run_promote

pytestmark = pytest.mark.django_db


def _errors(response) -> dict:
    """The per-field messages of an error response."""
    body = response.json()
    return body.get("errors", body)


# --- hyperparameters given for a run override the scenario's stored ones key by key -------------------------


def test_run_hyperparameters_override_the_scenarios_stored_ones_key_by_key():
    clustered_catalog()
    movies = scenario(algorithm="item_knn", hyperparameters={"k": 25, "shrink": 10})

    run = training_run_create(scenario=movies, params={"shrink": 0})

    assert run.params["k"] == 25 and run.params["shrink"] == 0


def test_the_api_merges_run_hyperparameters_into_the_scenarios(api):
    clustered_catalog()
    scenario(algorithm="item_knn", hyperparameters={"k": 25, "shrink": 10})

    response = api.post("/api/v1/scenarios/movies/runs/", {"hyperparameters": {"shrink": 0}}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["params"]["k"] == 25 and response.json()["params"]["shrink"] == 0


def test_another_algorithms_run_starts_from_its_own_defaults():
    clustered_catalog()
    movies = scenario(algorithm="item_knn", hyperparameters={"k": 25, "shrink": 10})

    run = training_run_create(scenario=movies, algorithm="ease", params={})

    assert "k" not in run.params and "shrink" not in run.params


# --- parents are checked when the run is queued, not on the worker ---------------------------------------------


@pytest.mark.parametrize(
    ("parent_algorithm", "algorithm"),
    [("ease", "distill"), ("popularity", "distill"), ("gru4rec", "sasrec"), ("sasrec", "gru4rec")],
)
def test_a_parent_the_algorithm_cannot_learn_from_is_refused_at_queue_time(api, parent_algorithm, algorithm):
    clustered_catalog()
    sequential = parent_algorithm in ("sasrec", "gru4rec")
    movies = scenario(algorithm=parent_algorithm, hyperparameters={"epochs": 1} if sequential else {})
    parent = succeeded(training_run_create(scenario=movies))
    queued_before = TrainingRun.objects.count()

    response = api.post("/api/v1/scenarios/movies/runs/", {"algorithm": algorithm, "parent": parent.pk}, format="json")

    assert response.status_code == 400, response.json()
    assert parent_algorithm in str(response.json()) and algorithm in str(response.json())
    assert TrainingRun.objects.count() == queued_before


def test_a_compatible_sequential_parent_is_accepted():
    clustered_catalog()
    movies = scenario(algorithm="sasrec", hyperparameters={"epochs": 1})
    parent = succeeded(training_run_create(scenario=movies))

    child = training_run_create(scenario=movies, algorithm="distill", params={"epochs": 1}, parent=parent)

    assert child.status == RunStatus.QUEUED and child.parent_id == parent.pk


# --- a slice too small to say anything is refused --------------------------------------------------------------


def _three_events() -> None:
    interactions_ingest(
        events=[
            EventRow(user=user, item=item, kind="click", occurred_at=START, event_id=f"{user}-{item}")
            for user, item in (("a", "x"), ("a", "y"), ("b", "x"))
        ]
    )


@override_settings(RECSYS_MIN_SLICE_EVENTS=100, RECSYS_MIN_SLICE_USERS=10, RECSYS_MIN_SLICE_ITEMS=10)
def test_a_three_event_slice_is_refused_at_queue_time(api):
    _three_events()
    scenario(k_list=[2])

    response = api.post("/api/v1/scenarios/movies/runs/", {}, format="json")

    assert response.status_code == 400, response.json()
    message = str(response.json())
    assert "3 events" in message and "100" in message
    assert TrainingRun.objects.count() == 0


def test_a_retrain_refused_in_the_browser_says_why_and_queues_nothing(client, admin_user):
    _three_events()
    scenario(k_list=[2])
    client.force_login(admin_user)

    page = client.post("/scenarios/movies/retrain/", follow=True).content.decode()

    assert "Retrain refused" in page and "3 events" in page
    assert TrainingRun.objects.count() == 0


def test_the_minimum_slice_and_evidence_have_sensible_defaults_for_real_use():
    names = ("RECSYS_MIN_SLICE_EVENTS", "RECSYS_MIN_SLICE_USERS", "RECSYS_MIN_SLICE_ITEMS", "RECSYS_LOW_EVIDENCE_USERS")
    environment = {name: value for name, value in os.environ.items() if name not in names}
    printed = subprocess.run(
        [sys.executable, "-c", f"from recsys_site import settings; print([getattr(settings, n) for n in {names!r}])"],
        env={**environment, "DJANGO_SECRET_KEY": "x" * 50},
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    events, users, items, evidence = json.loads(printed)
    assert events >= 100 and users >= 10 and items >= 10 and evidence >= 100


def test_a_k_beyond_the_slices_items_is_refused_rather_than_cut(api):
    clustered_catalog(items=30)
    scenario(k_list=[10, 50])

    response = api.post("/api/v1/scenarios/movies/runs/", {}, format="json")

    assert response.status_code == 400, response.json()
    assert "50" in str(_errors(response)["k_list"]) and "30 items" in str(_errors(response)["k_list"])
    assert TrainingRun.objects.count() == 0


# --- evidence is shown with its strength -----------------------------------------------------------------------


@override_settings(RECSYS_LOW_EVIDENCE_USERS=100)
def test_a_run_evaluated_on_few_users_is_low_evidence_and_needs_force_to_promote(api):
    clustered_catalog(users=40)
    run = succeeded(training_run_create(scenario=scenario()))

    shown = api.get(f"/api/v1/runs/{run.pk}/").json()
    refused = api.post(f"/api/v1/runs/{run.pk}/promote/", {}, format="json")
    forced = api.post(f"/api/v1/runs/{run.pk}/promote/", {"force": True}, format="json")

    assert shown["low_evidence"] is True and shown["metrics"]["evaluated_users"] < 100
    assert refused.status_code == 409 and "force" in refused.json()["detail"]
    assert forced.status_code == 201, forced.json()


@override_settings(RECSYS_LOW_EVIDENCE_USERS=10)
def test_a_run_evaluated_on_enough_users_promotes_without_force():
    clustered_catalog(users=40)
    run = succeeded(training_run_create(scenario=scenario()))

    promotion = training_run_promote(run=run)

    assert promotion.run_id == run.pk


@override_settings(RECSYS_LOW_EVIDENCE_USERS=100)
def test_the_service_refuses_a_low_evidence_promotion_without_force():
    clustered_catalog(users=40)
    run = succeeded(training_run_create(scenario=scenario()))

    with pytest.raises(Conflict):
        training_run_promote(run=run)
    assert training_run_promote(run=run, force=True).run_id == run.pk


# --- stable identity: the slug cannot be renamed under a schedule or a STAR domain ---------------------------


def test_a_scenarios_slug_is_read_only_after_creation(api):
    clustered_catalog()
    movies = scenario()
    scenario_schedule_set(scenario=movies, cron="0 3 * * *")

    response = api.patch("/api/v1/scenarios/movies/", {"slug": "films"}, format="json")

    assert response.status_code == 400, response.json()
    assert "slug" in _errors(response)
    movies.refresh_from_db()
    assert movies.slug == "movies" and scenario_schedule_get(scenario=movies) == "0 3 * * *"


def test_the_service_refuses_a_slug_change():
    movies = scenario_create(data={"slug": "movies", "name": "Movies"})

    with pytest.raises(ValidationFailed) as refused:
        scenario_update(scenario=movies, data={"slug": "films"})

    assert "slug" in refused.value.detail
    assert scenario_update(scenario=movies, data={"slug": "movies", "name": "Films"}).name == "Films"


def test_the_admin_shows_a_scenarios_slug_but_cannot_rename_it(client, admin_user):
    clustered_catalog()
    movies = scenario()
    scenario_schedule_set(scenario=movies, cron="0 3 * * *")
    client.force_login(admin_user)
    fields = {"name": "Films", "algorithm": "ease", "hyperparameters": "{}", "include_categories": "[]",
              "exclude_categories": "[]", "event_weights": "{}", "k_list": "[10]", "split": "random",
              "validation_share": "0.1", "test_share": "0.1", "min_user_events": "1", "min_item_events": "1",
              "compute_queue": "auto", "seed": "1", "default_k": "10", "objective": "ranking"}  # fmt: skip

    page = client.get(f"/admin/scenarios/scenario/{movies.pk}/change/").content.decode()
    saved = client.post(f"/admin/scenarios/scenario/{movies.pk}/change/", {**fields, "slug": "films"})

    assert 'name="slug"' not in page and "movies" in page
    assert saved.status_code == 302, saved.content.decode()[:2000]
    movies.refresh_from_db()
    assert (movies.slug, movies.name) == ("movies", "Films")
    assert scenario_schedule_get(scenario=movies) == "0 3 * * *"


@override_settings(RECSYS_LOW_EVIDENCE_USERS=100)
def test_the_run_page_marks_low_evidence_and_asks_to_confirm_the_promotion(client, admin_user):
    clustered_catalog(users=40)
    run = succeeded(training_run_create(scenario=scenario()))
    client.force_login(admin_user)

    page = client.get(f"/runs/{run.pk}/").content.decode()
    refused = client.post(f"/runs/{run.pk}/promote/", {"reason": "best NDCG@10"}, follow=True).content.decode()
    run.scenario.refresh_from_db()
    assert run.scenario.live_run_id is None
    client.post(f"/runs/{run.pk}/promote/", {"force": "1", "reason": "best NDCG@10"})
    run.scenario.refresh_from_db()

    assert 'data-testid="low-evidence"' in page and 'data-testid="promote-force"' in page
    assert "low evidence" in refused
    assert run.scenario.live_run_id == run.pk


@override_settings(RECSYS_LOW_EVIDENCE_USERS=100)
def test_every_page_listing_a_low_evidence_run_marks_it(client, admin_user):
    clustered_catalog(users=40)
    movies = scenario()
    weak, other = (succeeded(training_run_create(scenario=movies, algorithm=name)) for name in ("ease", "popularity"))
    client.force_login(admin_user)

    pages = {
        "scenario": client.get("/scenarios/movies/"),
        "runs table": client.get("/scenarios/movies/runs/"),
        "compare": client.get(f"/scenarios/movies/compare/?runs={weak.pk}&runs={other.pk}&baseline={weak.pk}"),
    }

    for name, page in pages.items():
        assert page.status_code == 200, name
        assert page.content.decode().count('data-testid="low-evidence"') >= 2, name  # both runs tested on 40 users
