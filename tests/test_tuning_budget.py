"""A study's wall-time budget and each trial's cap: a trial past either stops at an epoch boundary and succeeds
with its best epoch so far, recorded as stopped by the budget; through the real broker and a real worker."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import wait_until
from tests.factories import clustered_catalog, scenario, succeeded_trial
from training.models import RunStatus, Study, StudyStatus, TrainingRun
from training.tuning.choice import auto_selection
from training.tuning.pruning import budget_spent
from training.tuning.studies import TRIAL_SHARE, study_create, trial_seconds

# Far more epochs than the cap lets it run (small batches: tens of milliseconds an epoch on any machine), with a
# patience that does not stop it first.
ENDLESS = {"bpr": {"epochs": 2000, "early_stopping_patience": 1000, "batch_size": 4}}


def test_a_trial_may_use_a_share_of_the_study_budget():
    assert trial_seconds(900) == round(900 * TRIAL_SHARE) < 900
    assert trial_seconds(1) == 1 and trial_seconds(None) is None and trial_seconds(0) is None


@pytest.mark.django_db
def test_a_trial_has_no_time_left_past_its_cap_or_its_study_budget():
    clustered_catalog()
    movies = scenario(algorithm="bpr")
    study = Study.objects.create(scenario=movies, algorithms=["bpr"], max_seconds=100, trial_max_seconds=25)
    run = TrainingRun.objects.create(scenario=movies, algorithm="bpr", study=study, started_at=timezone.now())

    assert budget_spent(study, run) is None
    run.started_at = timezone.now() - timedelta(seconds=30)
    assert budget_spent(study, run) == "its wall-time cap of 25 s (a share of the study's budget) ran out"
    study.created_at = timezone.now() - timedelta(seconds=101)
    assert budget_spent(study, run) == "the study's wall-time budget of 100 s ran out"


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_a_trial_past_its_cap_succeeds_with_its_best_epoch_and_says_the_budget_stopped_it(
    celery_worker, api, client, admin_user
):
    clustered_catalog()
    movies = scenario(algorithm="bpr")

    study = study_create(scenario=movies, algorithms=["bpr"], fixed_params=ENDLESS, max_seconds=24, max_trials=1)

    wait_until(lambda: Study.objects.get(pk=study.pk).is_finished, timeout=180)
    study.refresh_from_db()
    trial = TrainingRun.objects.get(study=study)
    assert study.trial_max_seconds == 6
    assert trial.status == RunStatus.SUCCEEDED, trial.error
    assert trial.budget_stop == "its wall-time cap of 6 s (a share of the study's budget) ran out"
    assert 1 <= len(trial.history) < ENDLESS["bpr"]["epochs"] and trial.epoch == len(trial.history)
    curve = [entry["ndcg@10"] for entry in trial.history]
    assert trial.kept_epoch == curve.index(max(curve)) + 1
    assert trial.validation_metrics["ndcg@10"] == pytest.approx(max(curve), abs=1e-5)
    assert trial.metrics["ndcg@10"] >= 0 and trial.artifact_sha256
    assert study.status == StudyStatus.SUCCEEDED and study.best_run_id == trial.pk

    listed = api.get(f"/api/v1/studies/{study.pk}/").json()
    assert listed["trial_max_seconds"] == 6 and listed["trials"][0]["budget_stop"] == trial.budget_stop
    client.force_login(admin_user)
    assert 'data-testid="budget-stop"' in client.get(f"/studies/{study.pk}/").content.decode()
    assert 'data-testid="budget-stop"' in client.get(f"/runs/{trial.pk}/").content.decode()


@pytest.mark.django_db
def test_an_auto_candidate_stopped_by_the_budget_competes_with_its_best_epoch_and_says_so(client, admin_user):
    clustered_catalog()
    movies = scenario(algorithm="auto")
    study = Study.objects.create(
        scenario=movies, algorithms=["ease", "bpr"], max_seconds=60, trial_max_seconds=15, tune_top=1
    )
    stopped = "its wall-time cap of 15 s (a share of the study's budget) ran out"
    runs = [
        succeeded_trial(study, algorithm, number, {"ndcg@10": value}, budget_stop=budget_stop)
        for algorithm, number, value, budget_stop in (("ease", 0, 0.2, ""), ("bpr", 1, 0.3, stopped))
    ]

    selection = auto_selection(study, runs)

    assert selection["winner"] == runs[1].pk and selection["budget"]["trial_max_seconds"] == 15
    assert selection["candidates"][0]["budget_stop"] == stopped
    assert selection["reason"].startswith(
        f"bpr (run {runs[1].pk}, defaults, stopped by the budget at its best epoch so far) has the best validation"
    )
    auto = TrainingRun.objects.create(
        scenario=movies,
        algorithm="auto",
        status=RunStatus.SUCCEEDED,
        chosen_run=runs[1],
        selection={"order": {"has_order": True, "share": 1.0, "users": 40, "min": 0.5}, "skipped": {}, **selection},
    )
    client.force_login(admin_user)
    page = client.get(f"/runs/{auto.pk}/").content.decode()
    assert page.count('data-testid="candidate-budget-stop"') == 1 and "15 s per run" in page
