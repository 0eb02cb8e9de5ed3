"""A blend run on a real worker: it mixes succeeded runs of the scenario and is served like any model."""

import pytest

from tests.conftest import wait_until
from tests.factories import clustered_catalog, scenario
from tests.pages import visible_text
from training.models import RunStatus, TrainingRun
from training.services import training_run_create

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]


def _done(run_id: int) -> TrainingRun | None:
    run = TrainingRun.objects.get(pk=run_id)
    return run if run.is_finished else None


def test_a_blend_of_two_runs_trains_records_its_weights_and_serves(celery_worker, api):
    clustered_catalog()
    movies = scenario(algorithm="ease")
    ease = training_run_create(scenario=movies)
    knn = training_run_create(scenario=movies, algorithm="item_knn")
    for run in (ease, knn):
        assert wait_until(lambda run=run: _done(run.pk), timeout=120).status == RunStatus.SUCCEEDED

    created = api.post(
        "/api/v1/scenarios/movies/runs/", {"algorithm": "blend", "members": [ease.pk, knn.pk]}, format="json"
    )

    assert created.status_code == 201, created.json()
    blend = wait_until(lambda: _done(created.json()["id"]), timeout=120)
    assert blend.status == RunStatus.SUCCEEDED, blend.error
    weights = [blend.history[-1][f"weight_{n}"] for n in (1, 2)]
    assert sum(weights) == pytest.approx(1.0) and "ndcg@10" in blend.history[-1]
    assert blend.metrics["ndcg@10"] > 0
    assert api.post(f"/api/v1/runs/{blend.pk}/promote/", {"force": True}, format="json").status_code == 201
    served = api.get("/api/v1/scenarios/movies/recommendations/", {"user": "u1", "k": 5})
    assert served.status_code == 200 and served.json()["algorithm"] == "blend" and len(served.json()["items"]) == 5


@pytest.mark.django_db
def test_a_blend_refuses_a_single_or_unfinished_member(api):
    clustered_catalog()
    movies = scenario(algorithm="ease")
    queued = TrainingRun.objects.create(
        scenario=movies, algorithm="ease", seed=movies.seed, protocol={"split": movies.split}
    )

    response = api.post("/api/v1/scenarios/movies/runs/", {"algorithm": "blend", "members": [queued.pk]}, format="json")

    assert response.status_code == 400
    messages = " ".join(response.json()["errors"]["members"])
    assert "at least two" in messages and "queued" in messages


@pytest.mark.django_db
def test_the_run_page_says_which_better_mix_a_blend_left_and_why(viewer):
    clustered_catalog()
    movies = scenario(algorithm="ease")
    members = [
        TrainingRun.objects.create(scenario=movies, algorithm=name, status=RunStatus.SUCCEEDED)
        for name in ("ease", "ials")
    ]
    fit = {"ndcg@10": 0.2094, "weight_1": 1.0, "weight_2": 0.0, "best_mix_ndcg@10": 0.2108}
    fit |= {"best_mix_standard_error": 0.0031, "best_mix_weight_1": 0.6, "best_mix_weight_2": 0.4}
    blend = TrainingRun.objects.create(scenario=movies, algorithm="blend", status=RunStatus.SUCCEEDED, history=[fit])
    blend.members.set(members)

    page = visible_text(viewer.get(f"/runs/{blend.pk}/").content.decode())

    first, second = (member.pk for member in members)
    assert f"The best mix on validation (run {first} × 0.60 + run {second} × 0.40) reached NDCG@10 0.2108" in page
    assert "0.0014 above these weights: less than its standard error (0.0031)" in page
    assert "best_mix" not in page and "weight_1" not in page
