"""A study's best trial is its leader on validation only when the lead is more than noise: a tuned trial must beat
the best defaults trial by more than the noise of the best of that many tuned trials (√(2 ln n) standard errors of
their paired per-user difference on validation, at least one), else the defaults are kept."""

import numpy as np
import pytest

from tests.factories import clustered_catalog, scenario, succeeded_trial
from training.evaluation.compare import noise_bound, paired_lead, pooled_lead
from training.models import RunEvaluation, Study, StudyStatus, TrainingRun
from training.tuning.choice import auto_selection
from training.tuning.studies import study_advance, study_best_choice, study_best_trial

RANGE = {"low": 1.0, "high": 1000.0, "log": True, "step": None}
USERS = list(range(1, 201))


def _vector(mean: float, spread: float, seed: int) -> list[float]:
    values = np.random.default_rng(seed).normal(mean, spread, len(USERS))
    return np.clip(values, 0.0, 1.0).round(6).tolist()


def _trial(study: Study, number: int, algorithm: str, vector: list[float] | None) -> TrainingRun:
    value = float(np.mean(vector)) if vector is not None else 0.5
    run = succeeded_trial(study, algorithm, number, {"ndcg@10": value}, params={"l2": 10.0 + number})
    if vector is not None:
        RunEvaluation.objects.create(run=run, validation_user_ids=USERS, validation_vectors={"ndcg@10": vector})
    return run


def _study(**fields) -> Study:
    clustered_catalog()
    defaults = {
        "algorithms": ["ease"],
        "search_space": {"ease": {"l2": RANGE}},
        "max_trials": 3,
        "status": StudyStatus.SUCCEEDED,
    }
    return Study.objects.create(scenario=scenario(algorithm="ease"), **defaults | fields)


def test_the_lead_is_the_mean_paired_difference_and_its_standard_error():
    a, b = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.2, 0.2, 0.5, 0.4])

    lead = paired_lead(a, b)

    differences = b - a
    assert lead.mean_difference == pytest.approx(differences.mean())
    assert lead.standard_error == pytest.approx(differences.std(ddof=1) / 2)
    assert lead.n_users == 4 and lead.beyond(1.5) and not lead.beyond(1.6)  # 0.075 ahead, SE 0.048
    assert not paired_lead(a, a).beyond(1.0) and paired_lead(a, a).standard_error == 0.0


def test_a_lead_in_error_per_rating_pools_each_users_ratings_and_takes_them_together_in_its_error():
    a, b = np.array([4.0, 10.0, 3.0]), np.array([2.0, 9.0, 3.0])  # sums of squared errors of three users
    counts = np.array([1, 2, 3])

    lead = pooled_lead(a, b, counts)

    # B − A: −2, −1, 0 over 6 ratings, −0.5 a rating; the users' residuals −2 + 0.5, −1 + 1, 0 + 1.5.
    assert lead.mean_difference == pytest.approx(-0.5)
    assert lead.standard_error == pytest.approx(np.sqrt(3 / 2 * (1.5**2 + 0 + 1.5**2)) / 6)
    assert lead.n_users == 3 and pooled_lead(a, a, counts).standard_error == 0.0
    with pytest.raises(ValueError):
        pooled_lead(a, b, np.array([1, 0, 3]))


def test_the_noise_of_the_best_of_n_leads_grows_as_the_root_of_twice_the_log_of_n():
    assert noise_bound(0) == noise_bound(1) == 1.0 and noise_bound(2) == pytest.approx(1.177, abs=1e-3)
    assert noise_bound(20) == pytest.approx(2.448, abs=1e-3)
    assert noise_bound(500) == pytest.approx(3.526, abs=1e-3)


@pytest.mark.django_db
def test_a_tuned_trial_ahead_by_noise_alone_does_not_replace_the_defaults():
    study = _study()
    base = _vector(0.30, 0.25, seed=1)
    defaults = _trial(study, 0, "ease", base)
    noise = np.random.default_rng(2).normal(0.0, 0.2, len(USERS))
    noisy = (np.array(base) + noise - noise.mean() + 0.004).round(6).tolist()  # 0.004 ahead, SE about 0.014
    tuned = _trial(study, 1, "ease", noisy)

    choice = study_best_choice(study=study)

    assert tuned.validation_metrics["ndcg@10"] > defaults.validation_metrics["ndcg@10"]
    assert choice.leader == tuned and choice.run == defaults == study_best_trial(study=study)
    assert not choice.lead.beyond(1.0) and choice.lead.n_users == len(USERS)
    assert f"trial 1 led on validation ndcg@10 by +{choice.lead.mean_difference:.4f}" in choice.reason
    assert "within 1.00 standard errors" in choice.reason and "among 1 tuned trial:" in choice.reason
    assert "the defaults of ease (trial 0) are kept" in choice.reason


@pytest.mark.django_db
def test_a_lead_that_one_trial_makes_clear_is_noise_among_twenty():
    study = _study(max_trials=21)
    base = _vector(0.30, 0.25, seed=1)
    _trial(study, 0, "ease", base)
    noise = np.random.default_rng(2).normal(0.0, 0.1, len(USERS))
    ahead = (np.array(base) + noise - noise.mean() + 0.0105).round(6).tolist()  # SE about 0.007: 1.5 SE ahead
    leader = _trial(study, 1, "ease", ahead)

    alone = study_best_choice(study=study)
    for number in range(2, 21):  # nineteen more tuned trials, each behind the leader
        _trial(study, number, "ease", (np.array(base) - 0.01).round(6).tolist())
    among_twenty = study_best_choice(study=study)

    assert 1.0 < alone.lead.mean_difference / alone.lead.standard_error < noise_bound(20)
    assert alone.run == leader and "more than 1.00 standard errors" in alone.reason
    assert among_twenty.leader == leader and among_twenty.run.trial_number == 0
    assert "within 2.45 standard errors" in among_twenty.reason and "among 20 tuned trials" in among_twenty.reason


@pytest.mark.django_db
def test_a_tuned_trial_clearly_ahead_is_the_best_and_the_study_records_why():
    study = _study(status=StudyStatus.RUNNING, max_trials=2)
    base = _vector(0.30, 0.25, seed=1)
    _trial(study, 0, "ease", base)
    tuned = _trial(study, 1, "ease", (np.array(base) + 0.05).round(6).tolist())

    study_advance(study_id=study.pk)  # nothing left to run: the study ends with its best

    study.refresh_from_db()
    assert study.status == StudyStatus.SUCCEEDED and study.best_run_id == tuned.pk
    assert study.best_reason.startswith("trial 1 leads the defaults of ease (trial 0) on validation ndcg@10 by +0.05")
    assert "more than 1.00 standard errors" in study.best_reason


@pytest.mark.django_db
def test_without_per_user_validation_the_leader_is_the_best():
    study = _study()
    _trial(study, 0, "ease", None)
    tuned = succeeded_trial(study, "ease", 1, {"ndcg@10": 0.6}, params={"l2": 50.0})

    choice = study_best_choice(study=study)

    assert choice.run == tuned and choice.lead is None
    assert "best on validation ndcg@10" in choice.reason and "no per-user validation" in choice.reason


@pytest.mark.django_db
def test_auto_chooses_as_the_study_does_and_says_why():
    study = _study(algorithms=["ease", "item_knn"], tune_top=1, search_space={"ease": {"l2": RANGE}}, max_trials=3)
    base = _vector(0.30, 0.25, seed=1)
    ease = _trial(study, 0, "ease", base)
    _trial(study, 1, "item_knn", _vector(0.20, 0.25, seed=3))
    noise = np.random.default_rng(4).normal(0.0, 0.2, len(USERS))
    tuned = _trial(study, 2, "ease", (np.array(base) + noise - noise.mean() + 0.004).round(6).tolist())

    selection = auto_selection(study, list(study.trials.order_by("trial_number")))

    assert tuned.validation_metrics["ndcg@10"] > ease.validation_metrics["ndcg@10"]
    assert selection["winner"] == ease.pk
    assert "within 1.00 standard errors" in selection["reason"] and "(trial 0) are kept" in selection["reason"]


def _rating_trial(study: Study, number: int, algorithm: str, errors: np.ndarray, counts: np.ndarray) -> TrainingRun:
    """A trial of a rating study whose users' squared errors sum to ``errors`` over ``counts`` ratings each."""
    rmse = float(np.sqrt(errors.sum() / counts.sum()))
    run = succeeded_trial(study, algorithm, number, {"rmse": rmse}, params={"factors": 8 + number})
    vectors = {"rmse": errors.round(6).tolist(), "ratings": counts.tolist()}
    RunEvaluation.objects.create(run=run, validation_user_ids=USERS, validation_vectors=vectors)
    return run


@pytest.mark.django_db
def test_a_lower_rating_error_replaces_the_defaults_only_by_more_than_noise():
    study = _study(
        algorithms=["biased_mf"], search_space={"biased_mf": {"factors": RANGE}}, objective="rmse", max_trials=3
    )
    rng = np.random.default_rng(5)
    counts = rng.integers(5, 30, len(USERS))
    base = counts * rng.gamma(2.0, 0.4, len(USERS))  # about 0.8 squared error a rating
    defaults = _rating_trial(study, 0, "biased_mf", base, counts)
    noise = rng.normal(0.0, 0.1, len(USERS)) * np.sqrt(counts)
    lucky = _rating_trial(study, 1, "biased_mf", base + noise - noise.mean() - 0.001 * counts, counts)

    by_noise = study_best_choice(study=study)
    clearly = _rating_trial(study, 2, "biased_mf", base * 0.8, counts)
    by_a_fifth = study_best_choice(study=study)

    assert lucky.validation_metrics["rmse"] < defaults.validation_metrics["rmse"]
    assert by_noise.leader == lucky and by_noise.run == defaults
    assert 0 < by_noise.lead.mean_difference < by_noise.lead.standard_error
    assert "trial 1 led on validation rmse by 0.0" in by_noise.reason and "less squared error per rating" in (
        by_noise.reason
    )
    assert "the defaults of biased_mf (trial 0) are kept" in by_noise.reason
    assert by_a_fifth.run == clearly and by_a_fifth.lead.beyond(noise_bound(2))
    assert by_a_fifth.lead.mean_difference == pytest.approx(0.2 * base.sum() / counts.sum(), rel=1e-4)
    assert "trial 2 leads the defaults of biased_mf (trial 0) on validation rmse by" in by_a_fifth.reason
