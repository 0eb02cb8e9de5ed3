"""Every page rendered for a demo-like dataset (succeeded, failed and one-step runs, an empty slice, a promotion):
no Python repr where a value belongs, and the admin names runs by their scenario."""

import re

import pytest

from scenarios.models import Scenario
from scenarios.services import scenario_slice_refresh
from tests.factories import clustered_catalog, scenario
from tests.pages import assert_no_python_repr, charts_with_working_csv, visible_text
from training.models import RunStatus, TrainingRun
from training.services import training_run_create, training_run_execute, training_run_promote

pytestmark = pytest.mark.django_db


def _run(movies: Scenario, algorithm: str, **params) -> TrainingRun:
    run = training_run_create(scenario=movies, algorithm=algorithm, params=params)
    training_run_execute(run_id=run.pk, device="cpu")
    return TrainingRun.objects.get(pk=run.pk)


@pytest.fixture
def demo(admin_user, client):
    """A catalogue, a scenario with an EASE, a BPR (curve) and an item-kNN run, one live; a scenario whose slice
    is empty and whose run failed before loading data."""
    clustered_catalog()
    movies = scenario(algorithm="ease", hyperparameters={"l2": 500.0}, include_categories=["Action", "Comedy"])
    scenario_slice_refresh(scenario=movies)
    ease, bpr, knn = _run(movies, "ease", l2=500.0), _run(movies, "bpr", epochs=3), _run(movies, "item_knn")
    training_run_promote(run=ease, actor=admin_user)
    empty = scenario(slug="empty", name="Empty shelf", min_user_events=500)
    scenario_slice_refresh(scenario=empty)
    # Queue-time checks refuse an empty slice; a run can still fail before loading data on the worker.
    failed = TrainingRun.objects.create(
        scenario=empty, algorithm="popularity", status=RunStatus.FAILED, error="database unavailable while loading"
    )
    # A student beside its teacher, as distillation records it, for the quality-against-cost plot.
    TrainingRun.objects.create(
        scenario=movies, algorithm="popularity", status=RunStatus.SUCCEEDED, parent=ease, finished_at=ease.finished_at,
        metrics={"ndcg@10": 0.2}, serving={**ease.serving, "latency_ms": 0.5, "parameters": 30},
    )  # fmt: skip
    assert (ease.status, bpr.status, knn.status, failed.status) == (RunStatus.SUCCEEDED,) * 3 + (RunStatus.FAILED,)
    client.force_login(admin_user)
    return {"client": client, "ease": ease, "bpr": bpr, "knn": knn, "failed": failed}


def _pages(demo) -> list[str]:
    ease, bpr, knn, failed = demo["ease"], demo["bpr"], demo["knn"], demo["failed"]
    return [
        "/scenarios/",
        "/scenarios/movies/",
        "/scenarios/empty/",
        "/scenarios/movies/edit/",
        "/scenarios/new/",
        f"/runs/{ease.pk}/",
        f"/runs/{bpr.pk}/",
        f"/runs/{knn.pk}/",
        f"/runs/{failed.pk}/",
        f"/scenarios/movies/compare/?runs={ease.pk}&runs={knn.pk}",
        f"/scenarios/movies/samples/?user=u1&run={knn.pk}",
        "/scenarios/empty/samples/?user=u1",
        "/scenarios/movies/runs/",
        "/scenarios/movies/runs/?params=all&sort=metric:ndcg@10&order=asc",
        "/scenarios/empty/runs/",
        "/scenarios/movies/browse/?q=1",
        "/scenarios/movies/browse/?user=u1",
        "/scenarios/movies/browse/?item=i3",
        "/scenarios/empty/browse/?user=u1",
        "/data/",
    ]


def test_no_page_shows_a_python_repr_or_none(demo):
    assert_no_python_repr(demo["client"], _pages(demo))


def test_the_model_shows_its_changed_hyperparameters_readably(demo):
    page = visible_text(demo["client"].get("/scenarios/movies/").content.decode())
    assert re.search(r"l2\s*=\s*500\b", page)
    run_page = visible_text(demo["client"].get(f"/runs/{demo['ease'].pk}/").content.decode())
    assert re.search(r"l2\s*=\s*500\b", run_page)


def test_a_failed_run_says_it_has_no_data_snapshot(demo):
    page = demo["client"].get(f"/runs/{demo['failed'].pk}/").content.decode()
    assert "no data snapshot: the run failed before loading data" in page
    assert "0 bytes" not in page


def test_an_empty_slice_shows_zero_not_unknown(demo):
    page = visible_text(demo["client"].get("/scenarios/empty/").content.decode())
    assert re.search(r"\b0 users · 0 items · 0 events", page)
    assert "?" not in re.sub(r"\s+", " ", page).split("Slice", 1)[1][:60]


def test_the_admin_names_a_run_by_its_scenario(demo):
    run = demo["bpr"]
    page = demo["client"].get(f"/admin/training/trainingrun/{run.pk}/change/").content.decode()
    assert f"run {run.pk} bpr on movies" in page
    assert f"on {run.scenario_id} (" not in page


def test_the_admin_cannot_add_or_edit_a_promotion(demo):
    client = demo["client"]
    listing = client.get("/admin/training/promotion/").content.decode()
    assert "/admin/training/promotion/add/" not in listing
    assert client.get("/admin/training/promotion/add/").status_code == 403
    promotion = demo["ease"].scenario.promotions.get()
    assert client.post(f"/admin/training/promotion/{promotion.pk}/change/", {"action": "rollback"}).status_code == 403
    assert client.get(f"/admin/training/promotion/{promotion.pk}/change/").status_code == 200  # still readable


def test_every_chart_has_a_working_csv_link(demo):
    # curve, metrics, cost, timeline, comparison, differences and the four data charts
    assert charts_with_working_csv(demo["client"], _pages(demo)) >= 10


def test_the_admin_names_a_bad_hyperparameter_without_its_path(demo):
    page = demo["client"].post(
        "/admin/scenarios/scenario/add/",
        {"slug": "films", "name": "Films", "algorithm": "sasrec", "hyperparameters": '{"embedding_size": 0}',
         "include_categories": "[]", "exclude_categories": "[]", "event_weights": "{}", "k_list": "[10]",
         "split": "random", "validation_share": "0.1", "test_share": "0.1", "min_user_events": "1",
         "min_item_events": "1", "compute_queue": "auto", "seed": "1", "default_k": "10"},
    ).content.decode()  # fmt: skip

    assert "embedding size: must be at least" in page and "hyperparameters.embedding_size" not in page
    assert not Scenario.objects.filter(slug="films").exists()


def test_the_favicon_is_served(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 200 and response["Content-Type"] == "image/x-icon"
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO header
