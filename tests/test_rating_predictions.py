"""The rating objective end to end: scenarios choose it, runs learn the events' values and record RMSE and MAE,
and the live model serves predicted ratings at GET …/predictions/."""

import pytest

from catalog.models import EndUser, Interaction, Item
from catalog.services import EndUserRow, ItemRow, end_users_upsert, items_upsert
from scenarios.models import Scenario
from tests.factories import clustered_catalog, scenario
from training.data import training_data_load
from training.live import _history, user_history
from training.models import RunStatus, TrainingRun
from training.services import training_run_create, training_run_execute, training_run_promote
from training.serving import model_cache

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_model_cache")]

URL = "/api/v1/scenarios/movies/predictions/"
FAST_MF = {"factors": 4, "iterations": 5}


def _trained(*, objective: str = "rating", algorithm: str = "biased_mf", params: dict | None = None) -> TrainingRun:
    clustered_catalog()
    hyperparameters = FAST_MF if params is None else params
    run = training_run_create(
        scenario=scenario(objective=objective, algorithm=algorithm, hyperparameters=hyperparameters)
    )
    assert training_run_execute(run_id=run.pk, device="cpu") == RunStatus.SUCCEEDED
    return TrainingRun.objects.get(pk=run.pk)


def _live(**kwargs) -> TrainingRun:
    run = _trained(**kwargs)
    training_run_promote(run=run)
    return run


def test_a_live_rating_history_reads_the_events_values():
    run = _live()
    movies = run.scenario
    loaded = model_cache.get(run)
    user = EndUser.objects.get(external_id="u4")
    events = user_history(scenario=movies, user_external_id="u4", length=50).events
    history = _history(movies, loaded, events)
    values = {item: value for item, value in Interaction.objects.filter(user=user).values_list("item_id", "value")}

    assert sorted(history.weights.tolist()) == sorted(values[event.item_id] for event in events)
    assert set(history.weights.tolist()) <= {3.0, 4.0, 5.0}


def test_the_rating_objective_trains_on_the_events_values():
    clustered_catalog()
    rating = training_data_load(scenario=scenario(objective="rating", algorithm="biased_mf"))
    values = dict(Interaction.objects.values_list("id", "value"))
    assert rating.data.weights.tolist() == [values[int(event)] for event in rating.event_ids]
    assert set(rating.data.weights.tolist()) == {3.0, 4.0, 5.0}


@pytest.mark.parametrize("algorithm", ["biased_mf", "neural_mf"])
def test_a_rating_run_records_rmse_and_mae_beside_the_ranking_metrics(algorithm):
    run = _trained(algorithm=algorithm, params={} if algorithm == "neural_mf" else FAST_MF)
    assert run.protocol["objective"] == "rating"
    assert 0 < run.metrics["mae"] <= run.metrics["rmse"] < 2.0  # ratings 3 to 5
    assert "ndcg@10" in run.metrics


def test_the_ranking_objective_refuses_a_model_that_predicts_ratings(api):
    clustered_catalog()
    scenario(algorithm="ease")

    created = api.post("/api/v1/scenarios/", {"slug": "r", "name": "R", "algorithm": "biased_mf"}, format="json")
    changed = api.patch("/api/v1/scenarios/movies/", {"algorithm": "neural_mf"}, format="json")
    run = api.post("/api/v1/scenarios/movies/runs/", {"algorithm": "biased_mf"}, format="json")

    for response in (created, changed, run):
        assert response.status_code == 400
        assert "predicts ratings" in response.json()["errors"]["algorithm"][0]
    assert list(Scenario.objects.values_list("algorithm", flat=True)) == ["ease"]
    assert not TrainingRun.objects.exists()


def test_the_rating_objective_refuses_a_model_that_cannot_predict_ratings(api):
    response = api.post("/api/v1/scenarios/", {"slug": "r", "name": "R", "objective": "rating"}, format="json")
    assert response.status_code == 400
    assert "does not predict ratings" in response.json()["errors"]["algorithm"][0]
    created = api.post(
        "/api/v1/scenarios/", {"slug": "r", "name": "R", "objective": "rating", "algorithm": "biased_mf"}, format="json"
    )
    assert created.status_code == 201 and created.json()["objective"] == "rating"
    changed = api.patch("/api/v1/scenarios/r/", {"algorithm": "ease"}, format="json")
    assert changed.status_code == 400 and "algorithm" in changed.json()["errors"]
    unknown = api.patch("/api/v1/scenarios/r/", {"objective": "loudness"}, format="json")
    assert unknown.status_code == 400 and "objective" in unknown.json()["errors"]


def test_a_run_of_another_algorithm_under_the_rating_objective_is_refused(api):
    clustered_catalog()
    scenario(objective="rating", algorithm="biased_mf")
    response = api.post("/api/v1/scenarios/movies/runs/", {"algorithm": "popularity"}, format="json")
    assert response.status_code == 400 and "algorithm" in response.json()["errors"]
    assert not TrainingRun.objects.exists()


def test_predictions_come_in_the_order_asked_within_the_ratings_range(api):
    run = _live()
    items_upsert(items=[ItemRow(external_id="fresh", title="No ratings yet")])
    response = api.get(URL, {"user": "u1", "items": "i12, i3,ghost,i3,fresh"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["run_id"] == run.pk
    assert [entry["item"] for entry in body["predictions"]] == ["i12", "i3"]
    assert all(3.0 <= entry["rating"] <= 5.0 for entry in body["predictions"])
    assert body["unknown_items"] == ["ghost", "fresh"]


def test_predictions_match_the_model(api):
    run = _live()
    body = api.get(URL, {"user": "u4", "items": "i0,i29"}).json()
    loaded = model_cache.get(run)
    users = loaded.user_ids.tolist()
    items = loaded.item_ids.tolist()
    user = users.index(EndUser.objects.get(external_id="u4").pk)
    positions = [items.index(Item.objects.get(external_id=name).pk) for name in ("i0", "i29")]
    expected = loaded.model.predict_ratings([user, user], positions).tolist()
    assert [entry["rating"] for entry in body["predictions"]] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"items": "i1"}, "user"),
        ({"user": "u1"}, "items"),
        ({"user": "u1", "items": " , ,"}, "items"),
        ({"user": "u1", "items": ",".join(f"i{n}" for n in range(1001))}, "items"),
        ({"user": "nobody", "items": "i1"}, "user"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, query, field):
    _live()
    response = api.get(URL, query)
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] and field in body["errors"]


def test_a_user_the_model_did_not_learn_from_is_a_400(api):
    _live()
    end_users_upsert(users=[EndUserRow(external_id="u1000")])  # in the catalogue, not in the model
    response = api.get(URL, {"user": "u1000", "items": "i1"})
    assert response.status_code == 400 and "user" in response.json()["errors"]


def test_no_live_model_is_a_409(api):
    clustered_catalog()
    scenario(objective="rating", algorithm="biased_mf")
    response = api.get(URL, {"user": "u1", "items": "i1"})
    assert response.status_code == 409 and response.json()["detail"]


def test_a_live_model_that_does_not_predict_ratings_is_a_409(api):
    _live(objective="ranking", algorithm="popularity", params={})
    response = api.get(URL, {"user": "u1", "items": "i1"})
    assert response.status_code == 409 and "does not predict ratings" in response.json()["detail"]


def test_the_run_and_scenario_pages_show_the_objective_and_the_rating_errors(admin_user, client):
    run = _trained()
    client.force_login(admin_user)
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert 'data-testid="rating-errors"' in page and f"RMSE {run.metrics['rmse']:.4f}" in page
    assert "objective rating" in page
    assert "objective rating" in client.get("/scenarios/movies/").content.decode()
