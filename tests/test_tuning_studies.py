"""Studies through the real broker and a real Celery worker: trials are child runs, pruned ones stop early."""

import pytest

from scenarios.services import scenario_create
from tests.conftest import wait_until
from tests.factories import clustered_catalog, scenario
from training.models import RunEvaluation, RunStatus, Study, StudyStatus, TrainingRun
from training.tuning.studies import study_create

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

# Trial 0 runs these (the defaults, with a quick learning rate); the sampled trials learn nothing (a rate of 1e-6)
# and must fall behind trial 0's validation curve by the third epoch.
FIXED = {"bpr": {"epochs": 30, "early_stopping_patience": 30, "batch_size": 64, "learning_rate": 0.05}}
HOPELESS = {"bpr": {"learning_rate": {"choices": [1e-6]}}}


def _finished(study_id: int) -> Study:
    study = Study.objects.get(pk=study_id)
    return study if study.is_finished else None


def test_a_study_runs_its_trials_as_child_runs_prunes_the_hopeless_and_promotes_the_best(
    celery_worker, client, admin_user
):
    clustered_catalog()
    movies = scenario(algorithm="bpr")

    study = study_create(
        scenario=movies, algorithms=["bpr"], search_space=HOPELESS, fixed_params=FIXED, max_trials=3, parallel_trials=1
    )

    wait_until(lambda: _finished(study.pk), timeout=240)
    study.refresh_from_db()
    trials = list(TrainingRun.objects.filter(study=study).order_by("trial_number"))
    assert study.status == StudyStatus.SUCCEEDED, study.error
    assert [run.trial_number for run in trials] == [0, 1, 2]
    assert all(run.scenario_id == movies.pk and run.worker for run in trials)
    assert trials[0].status == RunStatus.SUCCEEDED and trials[0].validation_metrics["ndcg@10"] > 0
    assert trials[0].params["learning_rate"] == 0.05
    for pruned in trials[1:]:
        assert pruned.params["learning_rate"] == 1e-6
        assert pruned.status == RunStatus.PRUNED and "pruned at epoch" in pruned.error
        assert len(pruned.history) < FIXED["bpr"]["epochs"]
    assert study.best_run_id == trials[0].pk and study.best_reason == (
        f"trial 0 is the best on validation ndcg@10 ({trials[0].validation_metrics['ndcg@10']:.4f}), on its defaults"
    )
    evaluation = RunEvaluation.objects.get(run=trials[0])  # its per-user validation, to weigh later trials' leads
    assert len(evaluation.validation_user_ids) == len(evaluation.validation_vectors["ndcg@10"]) > 0
    assert sum(evaluation.validation_vectors["ndcg@10"]) / len(evaluation.validation_user_ids) == pytest.approx(
        trials[0].validation_metrics["ndcg@10"]
    )

    client.force_login(admin_user)
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert 'id="history"' in page and 'id="slices"' in page and "pruned at epoch" in page
    assert "on its defaults" in page

    promoted = client.post(f"/studies/{study.pk}/promote/", {"force": "1", "reason": "the best trial"})
    movies.refresh_from_db()
    assert promoted.status_code == 302 and movies.live_run_id == trials[0].pk


def test_cancelling_a_study_stops_its_running_trial_and_starts_no_other(celery_worker, api):
    clustered_catalog()
    movies = scenario(algorithm="bpr")
    slow = {"bpr": {"epochs": 400, "early_stopping_patience": 400, "batch_size": 64}}
    study = study_create(scenario=movies, algorithms=["bpr"], fixed_params=slow, max_trials=5, parallel_trials=1)
    wait_until(lambda: (TrainingRun.objects.get(study=study).epoch or 0) >= 2, timeout=120)

    response = api.post(f"/api/v1/studies/{study.pk}/cancel/")

    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    wait_until(lambda: TrainingRun.objects.get(study=study).is_finished, timeout=60)
    trial = TrainingRun.objects.get(study=study)
    assert trial.status == RunStatus.CANCELLED and trial.epoch < 400
    assert TrainingRun.objects.filter(study=study).count() == 1
    assert api.post(f"/api/v1/studies/{study.pk}/promote/", {"force": True}, format="json").status_code == 409


def test_a_study_of_a_scenario_group_tunes_ease_adapted_per_member(celery_worker, api):
    clustered_catalog(users=60, items=30, per_user=10)
    group = scenario_create(data={"slug": "all", "name": "All"})
    for slug, category in (("action", "Action"), ("drama", "Drama")):
        scenario_create(data={"slug": slug, "name": category, "include_categories": [category], "parent": group})

    alone = api.post(
        "/api/v1/scenarios/action/studies/", {"algorithms": ["adapted_ease"], "max_trials": 2}, format="json"
    )
    study = study_create(scenario=group, algorithms=["adapted_ease"], max_trials=3, parallel_trials=1)

    assert alone.status_code == 400 and "start the study on the group" in str(alone.json()["errors"])
    wait_until(lambda: _finished(study.pk), timeout=180)
    study.refresh_from_db()
    trials = list(TrainingRun.objects.filter(study=study).order_by("trial_number"))
    assert study.status == StudyStatus.SUCCEEDED, study.error
    assert len(trials) == 3 and all(run.status == RunStatus.SUCCEEDED for run in trials)
    assert len({run.params["l2"] for run in trials}) == 3  # the defaults, then two values TPE proposed
    assert all({"transfer_1", "transfer_2"} <= set(run.history[-1]) for run in trials)  # adapted per member
    leader = max(trials, key=lambda run: (run.validation_metrics["ndcg@10"], -run.trial_number))
    kept = "are kept" in study.best_reason  # the leader's lead over the defaults was within the noise
    assert study.best_run_id == (trials[0].pk if kept else leader.pk), study.best_reason
