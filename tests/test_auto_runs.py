"""``auto`` runs through the real broker and a real Celery worker: the baselines (and the sequential models when the
events have order) with their defaults, the best of them tuned, the best on validation kept, every candidate and
the reason recorded; and the order test, the budget settings and cancelling."""

import io
import json
from datetime import timedelta

import numpy as np
import pytest
from django.core.management import call_command

from scenarios.models import Scenario
from tests.conftest import wait_until
from tests.factories import clustered_catalog, scenario
from training.algorithms.auto import BASELINES, SEQUENTIAL, candidates_for, event_order
from training.algorithms.registry import get_algorithm
from training.interactions import InteractionData
from training.models import RunStatus, Study, StudyStatus, TrainingRun
from training.tuning.choice import auto_selection


def _events(users: list[int], timestamps: list[int]) -> InteractionData:
    n = len(users)
    return InteractionData(
        n_users=max(users) + 1,
        n_items=n,
        users=np.array(users, dtype=np.int64),
        items=np.arange(n, dtype=np.int64),
        weights=np.ones(n, dtype=np.float32),
        timestamps=np.array(timestamps, dtype=np.int64),
    )


def test_events_at_distinct_times_have_order_and_bring_in_the_sequential_models():
    order = event_order(_events([0, 0, 0, 1, 1, 2], [1, 2, 3, 5, 9, 4]))

    assert order.has_order and order.share == 1.0 and order.users == 2
    assert candidates_for(order) == ([*BASELINES, *SEQUENTIAL], {})


def test_events_stamped_alike_have_no_order_and_leave_the_sequential_models_out_with_the_reason():
    # user 0: three events at one time and one later (1 of 3 steps later); user 1: two at one time (0 of 1)
    order = event_order(_events([0, 0, 0, 0, 1, 1], [7, 7, 7, 8, 3, 3]))

    assert not order.has_order and order.share == pytest.approx(0.25)
    algorithms, skipped = candidates_for(order)
    assert algorithms == list(BASELINES) and set(skipped) == set(SEQUENTIAL)
    assert "no order" in skipped["sasrec"] and "25%" in skipped["sasrec"]


@pytest.mark.django_db
def test_a_bad_budget_or_objective_is_a_400_naming_the_hyperparameter(api):
    clustered_catalog()
    scenario()

    none = api.patch(
        "/api/v1/scenarios/movies/", {"algorithm": "auto", "hyperparameters": {"max_seconds": 0}}, format="json"
    )
    unknown = api.post(
        "/api/v1/scenarios/movies/runs/",
        {"algorithm": "auto", "hyperparameters": {"objective": "auc@10"}},
        format="json",
    )

    assert none.status_code == 400 and "hyperparameters.max_seconds" in none.json()["errors"]
    assert unknown.status_code == 400 and "hyperparameters.objective" in unknown.json()["errors"]
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_auto_needs_a_validation_part_and_no_parent(api):
    clustered_catalog()
    scenario(validation_share=0.0)

    response = api.post("/api/v1/scenarios/movies/runs/", {"algorithm": "auto"}, format="json")

    assert response.status_code == 400 and "algorithm" in response.json()["errors"]
    assert not TrainingRun.objects.exists()


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_auto_keeps_the_best_of_its_candidates_on_validation_and_records_why(celery_worker, api, client, admin_user):
    clustered_catalog()
    movies = scenario(algorithm="auto", hyperparameters={"max_trials": 9, "max_seconds": 600})
    out = io.StringIO()

    call_command("train", "movies", "--wait", "--timeout", "500", stdout=out, stderr=io.StringIO())

    summary = json.loads(out.getvalue())
    run = TrainingRun.objects.get(pk=summary["run"])
    assert run.algorithm == "auto" and run.status == RunStatus.SUCCEEDED, run.error
    study = Study.objects.get(auto_run=run)
    candidates = list(study.trials.order_by("trial_number"))
    selection = run.selection
    # 1. every applicable algorithm with its defaults (clustered_catalog's events are an hour apart: ordered)
    assert selection["order"]["has_order"] and selection["skipped"] == {}
    assert [c.algorithm for c in candidates[:7]] == [*BASELINES, *SEQUENTIAL]
    assert all(c.params == _defaults(c.algorithm) for c in candidates[:7])
    # 2. then the best two with a range to search, tuned: the trial budget of 9 runs in all
    assert len(candidates) == 9 and len(selection["tuned"]) == 2
    defaults_ranked = sorted(
        (c for c in candidates[:7] if c.status == RunStatus.SUCCEEDED and c.algorithm != "popularity"),
        key=lambda c: -c.validation_metrics["ndcg@10"],
    )
    assert set(selection["tuned"]) == {c.algorithm for c in defaults_ranked[:2]}
    assert {c.algorithm for c in candidates[7:]} <= set(selection["tuned"])
    # 3. the best on validation is chosen, among at least three algorithms, and the reason says so
    scored = [c for c in candidates if c.status == RunStatus.SUCCEEDED]
    assert len({c.algorithm for c in scored}) >= 3
    best = max(scored, key=lambda c: (c.validation_metrics["ndcg@10"], -c.trial_number))
    assert run.chosen_run_id == best.pk == selection["winner"] == summary["chosen_run"]
    assert run.metrics == best.metrics and study.status == StudyStatus.SUCCEEDED
    assert selection["reason"].startswith(f"{best.algorithm} (run {best.pk}")
    assert "best validation ndcg@10" in selection["reason"] and "over the best other algorithm" in selection["reason"]
    assert selection["candidates"][0]["run"] == best.pk
    assert {row["run"] for row in selection["candidates"]} == {c.pk for c in candidates}

    api_run = api.get(f"/api/v1/runs/{run.pk}/").json()
    assert api_run["chosen_run"] == best.pk and api_run["selection"]["reason"] == selection["reason"]
    client.force_login(admin_user)
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert 'data-testid="auto-candidates"' in page and 'data-testid="auto-reason"' in page
    assert page.count('href="/runs/') >= len(candidates)

    promoted = api.post(f"/api/v1/runs/{run.pk}/promote/", {"force": True}, format="json")
    movies.refresh_from_db()
    assert promoted.status_code == 201, promoted.json()
    assert movies.live_run_id == best.pk
    assert movies.promotions.get().reason.startswith(f"chosen by auto run {run.pk}")


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_cancelling_an_auto_run_stops_its_search(celery_worker, api):
    clustered_catalog()
    scenario(algorithm="auto")
    run = TrainingRun.objects.get(pk=api.post("/api/v1/scenarios/movies/runs/", {}, format="json").json()["id"])
    wait_until(lambda: Study.objects.filter(auto_run=run).exists(), timeout=120)

    response = api.post(f"/api/v1/runs/{run.pk}/cancel/")

    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    study = Study.objects.get(auto_run=run)
    wait_until(lambda: all(c.is_finished for c in study.trials.all()), timeout=120)
    run.refresh_from_db()
    study.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.chosen_run_id is None and "candidates" in run.selection
    assert study.status == StudyStatus.CANCELLED
    started = study.trials.count()
    assert started < len(BASELINES) + len(SEQUENTIAL)
    assert api.post(f"/api/v1/runs/{run.pk}/cancel/").status_code == 409


def _defaults(algorithm: str) -> dict:
    return get_algorithm(algorithm)().hparams


@pytest.mark.django_db
def test_the_scenario_form_asks_for_auto_with_its_budget(client, admin_user):
    clustered_catalog()
    client.force_login(admin_user)
    form = {
        "slug": "books",
        "name": "Books",
        "event_weights": "rating:1",
        "min_user_events": "1",
        "min_item_events": "1",
        "split": "random",
        "validation_share": "0.1",
        "test_share": "0.1",
        "k_list": "10",
        "objective": "ranking",
        "compute_queue": "auto",
        "seed": "1",
        "default_k": "10",
        "exclude_seen": "on",
        "algorithm": "auto",
        "hp__auto__max_seconds": "600",
        "hp__auto__max_trials": "0",
        "hp__auto__tune_top": "3",
        "hp__auto__objective": "recall@10",
    }

    page = client.get("/scenarios/new/").content.decode()
    bad = client.post("/scenarios/new/", {**form, "hp__auto__max_seconds": "0"})
    saved = client.post("/scenarios/new/", form)

    assert 'value="auto"' in page and "hp__auto__max_seconds" in page
    assert bad.status_code == 200 and 'data-testid="hp-error-max_seconds"' in bad.content.decode()
    assert saved.status_code == 302
    books = Scenario.objects.get(slug="books")
    assert books.algorithm == "auto" and books.hyperparameters["tune_top"] == 3
    assert books.hyperparameters["objective"] == "recall@10"


@pytest.mark.django_db
def test_the_reason_names_the_winner_its_margin_and_the_candidates_the_budget_left_untrained():
    clustered_catalog()
    movies = scenario(algorithm="auto")
    study = Study.objects.create(
        scenario=movies,
        algorithms=["popularity", "ease", "bpr"],
        search_space={"ease": {"l2": {"low": 1.0, "high": 1e5, "log": True, "step": None}}},
        tune_top=2,
        max_seconds=60,
        status=StudyStatus.SUCCEEDED,
    )
    Study.objects.filter(pk=study.pk).update(finished_at=study.created_at + timedelta(seconds=60))
    study.refresh_from_db()
    rows = [
        ("popularity", 0, 0.10, {}),
        ("ease", 1, 0.20, {"l2": 250.0}),
        ("bpr", 2, None, {}),  # stopped by the wall-time budget
        ("ease", 3, 0.25, {"l2": 30.5}),
    ]
    runs = [
        TrainingRun.objects.create(
            scenario=movies,
            algorithm=algorithm,
            params=params,
            study=study,
            trial_number=number,
            status=RunStatus.SUCCEEDED if value else RunStatus.CANCELLED,
            validation_metrics={"ndcg@10": value} if value else {},
        )
        for algorithm, number, value, params in rows
    ]

    selection = auto_selection(study, runs)

    assert selection["winner"] == runs[3].pk and selection["tuned"] == ["ease"]
    assert [row["run"] for row in selection["candidates"]] == [runs[3].pk, runs[1].pk, runs[0].pk, runs[2].pk]
    assert [row["stage"] for row in selection["candidates"]] == ["tuned", "defaults", "defaults", "defaults"]
    assert selection["reason"] == (
        f"ease (run {runs[3].pk}, tuned: l2=30.5) has the best validation ndcg@10, 0.2500, +150.0% over the best "
        "other algorithm, popularity (0.1000); 4 runs of 3 algorithms (bpr, ease, popularity); tuned: ease (the "
        "best 2 on their defaults); no run succeeded within the budget: bpr"
    )
    assert selection["budget"]["seconds_used"] == 60.0
