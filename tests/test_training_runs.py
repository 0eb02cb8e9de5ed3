"""Training runs executed in-process through the real services (the Celery path is in test_training_worker)."""

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.utils import timezone

from catalog.models import EndUser, Interaction
from recsys_site.errors import Conflict, ValidationFailed
from tests.factories import clustered_catalog, scenario, trained
from training.artifacts import ArtifactError, artifact_load
from training.models import Promotion, RunStatus, TrainingRun
from training.services import (
    scenario_rollback,
    training_run_cancel,
    training_run_create,
    training_run_execute,
    training_run_promote,
    training_runs_reap,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_model_cache")]


def _trained(algorithm: str = "popularity", **params) -> TrainingRun:
    return trained(scenario(algorithm=algorithm, hyperparameters=params), algorithm)


def test_a_run_records_metrics_snapshot_history_and_artifact():
    clustered_catalog()

    run = _trained()

    assert run.status == RunStatus.SUCCEEDED and run.progress == 1.0
    for k in (5, 10, 20):
        assert 0.0 <= run.metrics[f"ndcg@{k}"] <= 1.0
        assert f"recall@{k}" in run.metrics and f"coverage@{k}" in run.metrics
    assert run.data_snapshot["users"] == 40 and run.data_snapshot["items"] == 30
    assert len(run.data_snapshot["sha256"]) == 64
    assert run.history and run.timings["fit"] >= 0
    assert len(run.artifact_sha256) == 64 and run.artifact_size > 0
    assert len(run.evaluation.user_ids) == run.metrics["evaluated_users"] == len(run.evaluation.vectors["ndcg@10"])
    assert run.device == "cpu" and run.worker


def test_a_run_records_the_epoch_whose_weights_it_kept(api):
    clustered_catalog()
    iterative = _trained("bpr", epochs=12, early_stopping_patience=12)
    one_shot = training_run_create(scenario=iterative.scenario, algorithm="popularity", params={})
    training_run_execute(run_id=one_shot.pk, device="cpu")
    one_shot.refresh_from_db()

    ndcgs = [entry["ndcg@10"] for entry in iterative.history]
    assert iterative.kept_epoch == iterative.history[int(np.argmax(ndcgs))]["epoch"]
    assert api.get(f"/api/v1/runs/{iterative.pk}/").json()["kept_epoch"] == iterative.kept_epoch
    assert one_shot.kept_epoch is None and api.get(f"/api/v1/runs/{one_shot.pk}/").json()["kept_epoch"] is None


def test_the_same_seed_reproduces_the_metrics_exactly():
    clustered_catalog()
    first = _trained("bpr", epochs=3)
    second = training_run_create(scenario=first.scenario)
    training_run_execute(run_id=second.pk, device="cpu")
    assert TrainingRun.objects.get(pk=second.pk).metrics == first.metrics


def test_a_run_is_executed_once_even_if_delivered_twice():
    clustered_catalog()
    run = _trained()
    finished_at = run.finished_at

    assert training_run_execute(run_id=run.pk, device="cpu") == RunStatus.SUCCEEDED
    assert TrainingRun.objects.get(pk=run.pk).finished_at == finished_at


def test_too_little_data_is_refused_before_it_is_queued():
    with pytest.raises(ValidationFailed) as refused:
        training_run_create(scenario=scenario())
    assert "0 events" in str(refused.value.detail["slice"]) and not TrainingRun.objects.exists()


def test_cancelling_a_queued_run_is_immediate_and_a_finished_run_cannot_be_cancelled():
    clustered_catalog()
    queued = training_run_create(scenario=scenario())
    assert training_run_cancel(run=queued).status == RunStatus.CANCELLED
    assert training_run_execute(run_id=queued.pk, device="cpu") == RunStatus.CANCELLED  # not claimed
    finished = _trained_again(queued)
    with pytest.raises(Conflict):
        training_run_cancel(run=finished)


def _trained_again(run: TrainingRun) -> TrainingRun:
    again = training_run_create(scenario=run.scenario)
    training_run_execute(run_id=again.pk, device="cpu")
    return TrainingRun.objects.get(pk=again.pk)


def test_the_reaper_fails_runs_without_heartbeat_only():
    clustered_catalog()
    lost = training_run_create(scenario=scenario())
    alive = training_run_create(scenario=lost.scenario)
    old = timezone.now() - timedelta(minutes=10)
    TrainingRun.objects.filter(pk=lost.pk).update(status=RunStatus.RUNNING, heartbeat_at=old, worker="w1:12")
    TrainingRun.objects.filter(pk=alive.pk).update(status=RunStatus.RUNNING, heartbeat_at=timezone.now())

    assert training_runs_reap(stale_after=timedelta(minutes=2)) == [lost.pk]

    lost.refresh_from_db()
    assert lost.status == RunStatus.FAILED and "worker lost" in lost.error and "w1:12" in lost.error
    assert TrainingRun.objects.get(pk=alive.pk).status == RunStatus.RUNNING


def test_a_tampered_artifact_is_refused(api):
    clustered_catalog()
    run = _trained()
    tensors = Path(run.artifact_path) / "model.safetensors"
    data = bytearray(tensors.read_bytes())
    data[-1] ^= 0xFF
    tensors.write_bytes(bytes(data))

    with pytest.raises(ArtifactError, match="fails its checksum"):
        artifact_load(directory=tensors.parent, sha256=run.artifact_sha256)
    training_run_promote(run=run)
    response = api.get("/api/v1/scenarios/movies/recommendations/", {"user": "u1"})
    assert response.status_code == 503 and "checksum" in response.json()["detail"]


def test_a_foreign_file_in_the_artifact_is_refused():
    clustered_catalog()
    run = _trained()
    (Path(run.artifact_path) / "extra.pt").write_bytes(b"not ours")
    with pytest.raises(ArtifactError, match="expected"):
        artifact_load(directory=Path(run.artifact_path), sha256=run.artifact_sha256)


def test_serving_returns_k_unseen_items_for_a_known_user(api):
    clustered_catalog()
    training_run_promote(run=_trained("ease"))
    seen = set(Interaction.objects.filter(user__external_id="u4").values_list("item__external_id", flat=True))

    body = api.get("/api/v1/scenarios/movies/recommendations/", {"user": "u4", "k": 5}).json()

    assert body["fallback"] is None and body["algorithm"] == "ease" and len(body["request_id"]) == 32
    returned = [item["item"] for item in body["items"]]
    assert len(returned) == 5 and not seen.intersection(returned)
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)


def test_an_unknown_user_gets_the_popularity_fallback(api):
    clustered_catalog()
    training_run_promote(run=_trained("ease"))

    body = api.get("/api/v1/scenarios/movies/recommendations/", {"user": "never-seen"}).json()

    assert body["fallback"] == "popularity" and len(body["items"]) == 10
    popularity = {}
    for item in Interaction.objects.values_list("item__external_id", flat=True):
        popularity[item] = popularity.get(item, 0) + 1
    assert body["items"][0]["item"] == max(popularity, key=popularity.get) or body["items"][0]["score"] == max(
        popularity.values()
    )


def test_serving_applies_the_scenario_item_filter(api):
    clustered_catalog()
    run = _trained("ease")
    training_run_promote(run=run)
    api.patch("/api/v1/scenarios/movies/", {"exclude_categories": ["Action"]}, format="json")

    body = api.get("/api/v1/scenarios/movies/recommendations/", {"user": "u0", "k": 20}).json()

    ids = [int(item["item"][1:]) for item in body["items"]]
    assert ids and all(n >= 10 for n in ids)  # items 0-9 are the Action third


def test_serving_without_a_live_model_is_a_clear_409(api):
    scenario()
    response = api.get("/api/v1/scenarios/movies/recommendations/", {"user": "u1"})
    assert response.status_code == 409 and "no live model" in response.json()["detail"]


def test_similar_items_come_from_the_live_model(api):
    clustered_catalog()
    training_run_promote(run=_trained("item_knn"))

    body = api.get("/api/v1/scenarios/movies/items/i3/similar/", {"k": 5}).json()

    returned = [int(item["item"][1:]) for item in body["items"]]
    assert len(returned) == 5 and 3 not in returned
    assert sum(n < 10 for n in returned) >= 3  # mostly items of the same taste group


def test_promotion_history_and_one_step_rollback(api, admin_user):
    clustered_catalog()
    first = _trained()
    second = _trained_again(first)
    training_run_promote(run=first, actor=admin_user)
    response = api.post(f"/api/v1/runs/{second.pk}/promote/", {"reason": "better NDCG"}, format="json")
    assert response.status_code == 201 and response.json()["previous_run"] == first.pk
    assert response.json()["reason"] == "better NDCG"

    rollback = api.post("/api/v1/scenarios/movies/rollback/", {"reason": "complaints"}, format="json")

    assert rollback.status_code == 201 and rollback.json()["run"] == first.pk
    assert rollback.json()["previous_run"] == second.pk and rollback.json()["actor"] == "admin"
    first.scenario.refresh_from_db()
    assert first.scenario.live_run_id == first.pk
    assert list(Promotion.objects.values_list("action", flat=True)) == ["rollback", "promote", "promote"]
    history = api.get("/api/v1/scenarios/movies/promotions/").json()["results"]
    assert [(entry["action"], entry["run"], entry["reason"]) for entry in history] == [
        ("rollback", first.pk, "complaints"),
        ("promote", second.pk, "better NDCG"),
        ("promote", first.pk, ""),
    ]


def test_a_second_rollback_goes_further_back_never_forward(api, admin_user):
    clustered_catalog()
    first = _trained()
    second, third = _trained_again(first), _trained_again(first)
    for run in (first, second, third):
        training_run_promote(run=run, actor=admin_user, reason=f"try run {run.pk}")

    once = api.post("/api/v1/scenarios/movies/rollback/", {"reason": "slow"}, format="json")
    twice = api.post("/api/v1/scenarios/movies/rollback/", {"reason": "still wrong"}, format="json")
    thrice = api.post("/api/v1/scenarios/movies/rollback/", {"reason": "again"}, format="json")

    assert (once.json()["previous_run"], once.json()["run"]) == (third.pk, second.pk)
    assert (twice.json()["previous_run"], twice.json()["run"]) == (second.pk, first.pk)
    assert thrice.status_code == 409 and "no earlier live model" in thrice.json()["detail"]
    first.scenario.refresh_from_db()
    assert first.scenario.live_run_id == first.pk and Promotion.objects.count() == 5


def test_a_rollback_after_a_new_promotion_returns_to_the_run_it_replaced(admin_user):
    clustered_catalog()
    first = _trained()
    second, third = _trained_again(first), _trained_again(first)
    training_run_promote(run=first)
    training_run_promote(run=second)
    scenario_rollback(scenario=first.scenario)  # back to the first
    training_run_promote(run=third)  # the first is replaced by the third

    back = scenario_rollback(scenario=first.scenario)

    assert (back.previous_run_id, back.run_id) == (third.pk, first.pk)
    with pytest.raises(Conflict, match="no earlier live model"):
        scenario_rollback(scenario=first.scenario)


@pytest.mark.parametrize("target", ["not a slug!", ["movies"], {"slug": "movies"}])
def test_a_promotion_target_that_is_not_a_slug_is_a_400(api, target):
    clustered_catalog()
    run = _trained()

    response = api.post(f"/api/v1/runs/{run.pk}/promote/", {"scenario": target}, format="json")

    assert response.status_code == 400 and "scenario" in response.json()["errors"]
    assert not Promotion.objects.exists()


def test_only_succeeded_runs_can_be_promoted(api):
    clustered_catalog()
    queued = training_run_create(scenario=scenario())
    response = api.post(f"/api/v1/runs/{queued.pk}/promote/")
    assert response.status_code == 409 and "succeeded" in response.json()["detail"]


def test_run_overrides_are_validated(api):
    scenario()
    response = api.post(
        "/api/v1/scenarios/movies/runs/", {"algorithm": "bpr", "hyperparameters": {"epochs": -1}}, format="json"
    )
    assert response.status_code == 400 and "hyperparameters.epochs" in response.json()["errors"]
    assert not TrainingRun.objects.exists()


def test_a_reader_cannot_trigger_or_promote(reader_api):
    clustered_catalog()
    run = _trained()  # succeeded: a promotion would go through if the reader were allowed it

    assert reader_api.post("/api/v1/scenarios/movies/runs/", {}, format="json").status_code == 403
    assert reader_api.post(f"/api/v1/runs/{run.pk}/promote/", {}, format="json").status_code == 403
    assert reader_api.post("/api/v1/scenarios/movies/rollback/").status_code == 403
    assert reader_api.get("/api/v1/scenarios/movies/runs/").status_code == 200
    assert TrainingRun.objects.count() == 1 and not Promotion.objects.exists()


def test_seen_items_include_events_after_training(api):
    clustered_catalog()
    training_run_promote(run=_trained("ease"))
    first = api.get("/api/v1/scenarios/movies/recommendations/", {"user": "u4", "k": 1}).json()["items"][0]["item"]
    api.post(
        "/api/v1/interactions/",
        {"events": [{"user": "u4", "item": first, "occurred_at": 1_800_000_000}]},
        format="json",
    )

    after = api.get("/api/v1/scenarios/movies/recommendations/", {"user": "u4", "k": 5}).json()

    assert first not in [item["item"] for item in after["items"]]
    assert EndUser.objects.filter(external_id="u4").exists() and np.isfinite(after["items"][0]["score"])
