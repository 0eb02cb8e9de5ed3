"""Search spaces from the algorithms' declarations, and the study API's checks (no trial is sent: the
transaction of each test is never committed)."""

import optuna
import pytest

from tests.factories import clustered_catalog, scenario
from training.models import Study, TrainingRun
from training.tuning.space import SpaceError, default_space, space_clean, suggest


def test_the_default_space_is_the_declared_ranges_with_log_scale_and_step():
    assert default_space("ease") == {"l2": {"low": 1.0, "high": 1e5, "log": True, "step": None}}
    assert default_space("sasrec")["embedding_size"] == {"low": 16, "high": 256, "log": False, "step": 16}
    assert default_space("popularity") == {"weighted": {"choices": [False, True]}}


def test_a_search_space_override_is_checked_against_the_declaration():
    assert space_clean("ease", {"l2": {"low": 10, "high": 20}})["l2"] == {
        "low": 10.0,
        "high": 20.0,
        "log": False,
        "step": None,
    }
    with pytest.raises(SpaceError) as raised:
        space_clean("ease", {"l2": {"low": 0, "high": 10, "log": True}, "rank": {"choices": [1]}})
    assert set(raised.value.errors) == {"ease.l2", "ease.rank"}
    with pytest.raises(SpaceError):
        space_clean("bpr", {"learning_rate": {"low": 1e-3, "high": 5.0}})  # above the declared maximum


def test_suggestions_stay_inside_the_space_and_name_the_algorithm():
    spaces = {"ease": default_space("ease"), "item_knn": default_space("item_knn")}
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        algorithm, params = suggest(study.ask(), ["ease", "item_knn"], spaces)
        if algorithm == "ease":
            assert 1.0 <= params["l2"] <= 1e5 and set(params) == {"l2"}
        else:
            assert 5 <= params["k"] <= 1000 and 0 <= params["shrink"] <= 200


@pytest.fixture
def post_study(api):
    """Posts a study of the scenario "movies" (EASE over the clustered catalogue) to the API."""
    clustered_catalog()
    scenario(algorithm="ease")
    return lambda study: api.post("/api/v1/scenarios/movies/studies/", study, format="json")


@pytest.mark.django_db
def test_the_study_api_refuses_bad_studies_with_field_errors(post_study):
    response = post_study(
        {
            "algorithms": ["ease", "nope"],
            "objective": "ndcg",
            "search_space": {"ease": {"l2": {"low": 5, "high": 1}}},
            "fixed_params": {"ease": {"l2": -1}},
        }
    )

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {"algorithms", "objective", "budget", "search_space.ease.l2", "fixed_params.ease.l2"} <= set(errors)
    assert not Study.objects.exists() and not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_the_study_api_starts_a_study_with_one_trial_per_parallel_slot_defaults_first(api, post_study):
    response = post_study({"algorithms": ["ease", "item_knn"], "max_trials": 6, "parallel_trials": 3})

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "running" and [t["trial_number"] for t in body["trials"]] == [0, 1, 2]
    trials = TrainingRun.objects.filter(study_id=body["id"]).order_by("trial_number")
    assert [run.algorithm for run in trials[:2]] == ["ease", "item_knn"]
    assert trials[0].params["l2"] == 250.0  # the declared default
    assert trials[2].algorithm in ("ease", "item_knn")
    assert api.get(f"/api/v1/studies/{body['id']}/").status_code == 200


@pytest.mark.django_db
def test_the_tune_command_starts_a_study_and_refuses_a_bad_one():
    from django.core.management import CommandError, call_command

    clustered_catalog()
    scenario(algorithm="ease")

    call_command("tune", "movies", "--algorithm", "ease", "--trials", "2", "--param", "ease.l2=100", "--parallel", "1")

    study = Study.objects.get()
    assert study.algorithms == ["ease"] and study.max_trials == 2 and study.fixed_params == {"ease": {"l2": 100.0}}
    assert TrainingRun.objects.get(study=study).params["l2"] == 100.0
    with pytest.raises(CommandError, match="budget"):
        call_command("tune", "movies", "--algorithm", "ease")
