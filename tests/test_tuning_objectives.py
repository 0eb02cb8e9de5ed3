"""What studies and ``auto`` optimise: a ranking metric (maximised) anywhere, or under a scenario's rating
objective a rating error (minimised, the default there) over the models that predict ratings; the direction
holds for the sampler, the best trial, the choice and its reason, and the pages."""

import re

import pytest

from dashboards.study_figures import optimisation_history
from tests.conftest import wait_until
from tests.factories import clustered_catalog, scenario, succeeded_trial
from training.algorithms.auto import BASELINES, RATING, SEQUENTIAL, EventOrder, candidates_for
from training.algorithms.registry import get_algorithm, model_names
from training.evaluation.objectives import objective_default, objective_direction, objective_problem
from training.models import RunEvaluation, RunStatus, Study, StudyStatus, TrainingRun
from training.tuning.choice import auto_selection, tuned_algorithms
from training.tuning.pruning import optuna_study
from training.tuning.selectors import study_finished_optuna
from training.tuning.studies import study_best_choice, study_best_trial, study_create

RANGE = {"low": 1.0, "high": 100.0, "log": True, "step": None}


def test_a_rating_error_fits_only_a_rating_scenario_and_a_ranking_metric_fits_both():
    assert objective_default(ratings=True) == "rmse" and objective_default(ratings=False) == "ndcg@10"
    assert objective_direction("rmse") == "minimize" and objective_direction("recall@5") == "maximize"
    assert objective_problem("mae", ratings=True) is None and objective_problem("ndcg@10", ratings=True) is None
    assert "rating objective" in objective_problem("rmse", ratings=False)
    assert objective_problem("rmse") is None and "metric@K" in objective_problem("rmse@10")


def test_auto_considers_only_the_models_that_predict_ratings_under_the_rating_objective():
    ordered = EventOrder(share=1.0, users=10)

    algorithms, skipped = candidates_for(ordered, ratings=True)

    assert algorithms == list(RATING)
    assert set(RATING) == {name for name in model_names() if get_algorithm(name).predicts_ratings}
    assert set(skipped) == {*BASELINES, *SEQUENTIAL} and "does not predict ratings" in skipped["ease"]


@pytest.mark.django_db
def test_an_objective_or_algorithm_that_does_not_fit_the_scenario_is_a_400(api):
    clustered_catalog()
    scenario(algorithm="ease")
    rated = api.post(
        "/api/v1/scenarios/", {"slug": "rated", "name": "Rated", "objective": "rating", "algorithm": "auto"}, "json"
    )

    error_on_ranking = api.post(
        "/api/v1/scenarios/movies/studies/",
        {"algorithms": ["ease"], "objective": "rmse", "max_trials": 2},
        format="json",
    )
    ease_on_rating = api.post(
        "/api/v1/scenarios/rated/studies/", {"algorithms": ["ease"], "max_trials": 2}, format="json"
    )
    rating_model_on_ranking = api.post(
        "/api/v1/scenarios/movies/studies/", {"algorithms": ["ease", "biased_mf"], "max_trials": 2}, format="json"
    )
    auto_error = api.patch(
        "/api/v1/scenarios/movies/", {"algorithm": "auto", "hyperparameters": {"objective": "mae"}}, format="json"
    )
    auto_run = api.post(
        "/api/v1/scenarios/movies/runs/", {"algorithm": "auto", "hyperparameters": {"objective": "rmse"}}, "json"
    )

    assert rated.status_code == 201, rated.json()
    assert error_on_ranking.status_code == 400 and "objective" in error_on_ranking.json()["errors"]
    assert ease_on_rating.status_code == 400 and "does not predict ratings" in str(ease_on_rating.json()["errors"])
    assert rating_model_on_ranking.status_code == 400
    assert "predicts ratings" in str(rating_model_on_ranking.json()["errors"]["algorithms"])
    assert auto_error.status_code == 400 and "hyperparameters.objective" in auto_error.json()["errors"]
    assert auto_run.status_code == 400 and "hyperparameters.objective" in auto_run.json()["errors"]
    assert not Study.objects.exists() and not TrainingRun.objects.exists()


def _rmse_study(movies, values: list[tuple[str, float]]) -> tuple[Study, list[TrainingRun]]:
    study = Study.objects.create(
        scenario=movies,
        algorithms=["biased_mf", "neural_mf"],
        search_space={"biased_mf": {"factors": RANGE}, "neural_mf": {"embedding_size": RANGE}},
        objective="rmse",
        tune_top=1,
        max_trials=4,
        status=StudyStatus.SUCCEEDED,
    )
    runs = [
        succeeded_trial(
            study,
            algorithm,
            number,
            {"rmse": value, "ndcg@10": 0.5 - number / 10},
            params={"factors": 8} if algorithm == "biased_mf" else {"embedding_size": 8},
        )
        for number, (algorithm, value) in enumerate(values)
    ]
    return study, runs


@pytest.mark.django_db
def test_a_study_minimising_an_error_keeps_tunes_and_chooses_the_lowest(client, admin_user):
    clustered_catalog()
    movies = scenario(objective="rating", algorithm="biased_mf")
    study, runs = _rmse_study(movies, [("biased_mf", 0.95), ("neural_mf", 0.90), ("neural_mf", 0.85)])

    selection = auto_selection(study, runs)

    assert study_best_trial(study=study) == runs[2]
    assert tuned_algorithms(study, runs) == ["neural_mf"]
    assert optuna_study(study, runs).best_trial.number == 2
    assert selection["winner"] == runs[2].pk
    assert [row["run"] for row in selection["candidates"]] == [runs[2].pk, runs[1].pk, runs[0].pk]
    assert (
        "has the best validation rmse, 0.8500, 10.5% below the best other algorithm, biased_mf (0.9500)"
        in (selection["reason"])
    )
    history = optimisation_history(study_finished_optuna(study=study, trials=runs), study.objective)
    assert list(next(trace for trace in history.data if trace.name == "Best Value").y) == [0.95, 0.90, 0.85]
    client.force_login(admin_user)
    assert "validation rmse, minimised" in client.get(f"/studies/{study.pk}/").content.decode()


@pytest.mark.django_db
def test_a_study_of_a_rating_scenario_minimises_rmse_unless_told_otherwise():
    clustered_catalog()
    movies = scenario(objective="rating", algorithm="biased_mf")

    default = study_create(scenario=movies, algorithms=["biased_mf"], max_trials=1, parallel_trials=1)
    ranked = study_create(
        scenario=movies, algorithms=["biased_mf"], objective="ndcg@10", max_trials=1, parallel_trials=1
    )

    assert default.objective == "rmse" and ranked.objective == "ndcg@10"


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_auto_on_a_rating_scenario_chooses_the_lowest_validation_rmse_among_the_rating_models(celery_worker, api):
    clustered_catalog()
    scenario(objective="rating", algorithm="auto", hyperparameters={"max_trials": 3, "max_seconds": 300})

    created = api.post("/api/v1/scenarios/movies/runs/", {}, format="json")

    run = TrainingRun.objects.get(pk=created.json()["id"])
    wait_until(lambda: TrainingRun.objects.get(pk=run.pk).is_finished, timeout=300)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    study = Study.objects.get(auto_run=run)
    candidates = list(study.trials.order_by("trial_number"))
    assert study.objective == "rmse" and run.selection["objective"] == "rmse"
    assert [c.algorithm for c in candidates[:2]] == list(RATING) and len(candidates) == 3
    assert set(run.selection["skipped"]) == {*BASELINES, *SEQUENTIAL}
    scored = [c for c in candidates if c.status == RunStatus.SUCCEEDED]
    assert scored and all("rmse" in c.validation_metrics and "mae" in c.validation_metrics for c in scored)
    for candidate in scored:  # each user's sums of squared errors and ratings, which add up to the trial's RMSE
        kept = RunEvaluation.objects.get(run=candidate)
        vectors, ratings = kept.validation_vectors, sum(kept.validation_vectors["ratings"])
        assert len(kept.validation_user_ids) == len(vectors["rmse"]) == len(vectors["ratings"]) > 0
        assert (sum(vectors["rmse"]) / ratings) ** 0.5 == pytest.approx(candidate.validation_metrics["rmse"])
    best = min(scored, key=lambda c: (c.validation_metrics["rmse"], c.trial_number))
    choice = study_best_choice(study=study)
    assert choice.leader == best and run.chosen_run_id == choice.run.pk and "rmse" in run.metrics
    said = "has the best validation rmse" if choice.run == best else "is chosen with validation rmse"
    assert said in run.selection["reason"]


def _tune_form(page: str) -> str:
    form = re.search(r'<details data-testid="tune">(.*?)</details>', page, re.S)
    assert form is not None
    return form.group(1)


@pytest.mark.django_db
def test_the_tune_form_offers_only_the_algorithms_a_study_of_the_scenario_takes(analyst):
    scenario(algorithm="ease")
    scenario(slug="rated", name="Rated", objective="rating", algorithm="biased_mf")

    ranking = _tune_form(analyst.get("/scenarios/movies/").content.decode())
    rating = _tune_form(analyst.get("/scenarios/rated/").content.decode())

    ranking_choices = set(re.findall(r'name="algorithms" value="([^"]+)"', ranking))
    assert {"ease", "item_knn", "sasrec"} <= ranking_choices
    assert not ranking_choices & {"biased_mf", "neural_mf", "adapted_ease", "star"}  # no group: no group model
    assert set(re.findall(r'name="algorithms" value="([^"]+)"', rating)) == {"biased_mf", "neural_mf"}
    assert re.search(r'name="objective"[^>]*value="ndcg@10"', ranking) and "maximised" in ranking
    assert re.search(r'name="objective"[^>]*value="rmse"', rating) and "minimised" in rating


@pytest.mark.django_db
def test_the_tune_form_refuses_an_algorithm_that_does_not_fit_the_objective(analyst):
    scenario(slug="rated", name="Rated", objective="rating", algorithm="biased_mf")

    response = analyst.post("/scenarios/rated/studies/new/", {"algorithms": ["ease"], "max_trials": "2"}, follow=True)

    assert "Study refused" in response.content.decode() and "ease" in response.content.decode()
    assert not Study.objects.exists()
