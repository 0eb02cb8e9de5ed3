"""A blend run on a real worker: it mixes succeeded runs of the scenario and is served like any model."""

import pytest

from tests.conftest import wait_until
from tests.factories import clustered_catalog, scenario
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
