"""Dashboard pages through Django's test client: roles, forms, pages, exports, query counts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dashboards.figures import training_curve
from dashboards.services import account_create
from scenarios.models import Scenario
from tests.factories import clustered_catalog, scenario
from training.models import RunStatus, TrainingRun
from training.services import training_run_create, training_run_execute, training_run_promote
from training.serving import model_cache

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(client):
    account_create(username="vera", password="viewer-pass-123", role="viewer")
    client.login(username="vera", password="viewer-pass-123")
    return client


@pytest.fixture
def analyst(client):
    account_create(username="anna", password="analyst-pass-123", role="analyst")
    client.login(username="anna", password="analyst-pass-123")
    return client


def _trained(movies: Scenario, algorithm: str = "item_knn") -> TrainingRun:
    run = training_run_create(scenario=movies, algorithm=algorithm, params={})
    assert training_run_execute(run_id=run.pk, device="cpu") == RunStatus.SUCCEEDED
    return TrainingRun.objects.get(pk=run.pk)


def test_pages_need_a_login(client):
    response = client.get("/scenarios/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_viewer_reads_every_page_but_cannot_retrain_or_edit(viewer):
    clustered_catalog()
    movies = scenario()
    run = _trained(movies)
    for url in (
        "/scenarios/",
        "/scenarios/movies/",
        f"/runs/{run.pk}/",
        "/scenarios/movies/compare/",
        "/scenarios/movies/samples/?user=u1",
        "/data/",
    ):
        assert viewer.get(url).status_code == 200, url
    page = viewer.get("/scenarios/movies/").content.decode()
    assert 'data-testid="retrain"' not in page and "/edit/" not in page

    assert viewer.post("/scenarios/movies/retrain/").status_code == 403
    assert viewer.post(f"/runs/{run.pk}/promote/").status_code == 403
    assert viewer.get("/scenarios/new/").status_code == 403
    assert TrainingRun.objects.count() == 1


def test_an_analyst_retrains_from_the_page(analyst):
    clustered_catalog()
    scenario()
    response = analyst.post("/scenarios/movies/retrain/")
    assert response.status_code == 302
    assert TrainingRun.objects.get().created_by.username == "anna"


def _form(**overrides) -> dict:
    data = {
        "slug": "books",
        "name": "Books",
        "description": "",
        "include_categories": "",
        "exclude_categories": "",
        "event_weights": "rating:1",
        "min_value": "",
        "min_user_events": "1",
        "min_item_events": "1",
        "split": "random",
        "validation_share": "0.1",
        "test_share": "0.1",
        "k_list": "5, 10",
        "algorithm": "item_knn",
        "hp__item_knn__k": "50",
        "hp__item_knn__shrink": "0",
        "compute_queue": "auto",
        "seed": "1",
        "default_k": "10",
        "exclude_seen": "on",
        "schedule": "",
    }
    return {**data, **overrides}


def test_the_scenario_form_creates_with_hyperparameters_and_a_schedule(analyst):
    response = analyst.post("/scenarios/new/", _form(schedule="0 3 * * 1"))
    assert response.status_code == 302, response.content.decode()[:2000]
    books = Scenario.objects.get(slug="books")
    assert books.hyperparameters["k"] == 50 and books.k_list == [5, 10] and books.event_weights == {"rating": 1.0}
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(name="retrain:books")
    assert task.task == "training.scheduled_retrain" and task.crontab.day_of_week == "1"
    edit = analyst.get("/scenarios/books/edit/").content.decode()
    assert 'value="0 3 * * 1"' in edit


def test_the_scenario_form_shows_field_and_hyperparameter_errors(analyst):
    response = analyst.post("/scenarios/new/", _form(hp__item_knn__k="-3", k_list="five", schedule="99 * * * *"))
    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="error-k_list"' in page and 'data-testid="error-schedule"' in page
    assert not Scenario.objects.exists()
    response = analyst.post("/scenarios/new/", _form(hp__item_knn__k="-3"))
    assert 'data-testid="hp-error-k"' in response.content.decode()
    assert not Scenario.objects.exists()


def test_run_page_shows_curve_metrics_lineage_and_checksum(viewer):
    clustered_catalog()
    run = _trained(scenario(), "bpr")
    page = viewer.get(f"/runs/{run.pk}/").content.decode()
    assert 'id="curve-plot"' in page and 'id="metrics-plot"' in page
    assert run.artifact_sha256 in page and 'data-testid="lineage"' in page
    assert 'data-testid="slices-table"' in page
    assert "plotly/plotly.min.js" in page
    assert run.kept_epoch and f"kept the weights of epoch {run.kept_epoch}<" in page


def test_compare_page_shows_intervals_tests_and_histogram(viewer):
    clustered_catalog()
    movies = scenario()
    first, second = _trained(movies, "popularity"), _trained(movies, "ease")
    page = viewer.get(f"/scenarios/movies/compare/?runs={first.pk}&runs={second.pk}").content.decode()
    assert 'id="compare-plot"' in page and 'id="difference-plot"' in page
    assert 'data-testid="tests-table"' in page and "ndcg@10" in page


def test_samples_page_shows_history_both_lists_and_explanations(viewer):
    model_cache.clear()
    clustered_catalog()
    movies = scenario()
    live = _trained(movies, "item_knn")
    other = _trained(movies, "ease")
    training_run_promote(run=live)
    page = viewer.get(f"/scenarios/movies/samples/?user=u4&run={other.pk}&k=5").content.decode()
    assert page.count('data-testid="recommendations"') == 2
    assert "because you liked" in page


def test_csv_exports(viewer):
    clustered_catalog()
    run = _trained(scenario(), "bpr")
    history = viewer.get(f"/runs/{run.pk}/?export=history")
    assert history["Content-Type"] == "text/csv" and b"epoch" in history.content
    assert viewer.get("/data/?export=items").content.startswith(b"rank,events")
    assert b"ndcg@10" in viewer.get("/scenarios/movies/?export=timeline").content


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as context:
        assert client.get(url).status_code == 200
    return len(context.captured_queries)


def test_page_query_counts_do_not_grow_with_runs(viewer):
    clustered_catalog()
    movies = scenario()
    run = _trained(movies, "popularity")

    def add_runs(count: int) -> None:
        TrainingRun.objects.bulk_create(
            [
                TrainingRun(
                    scenario=movies,
                    algorithm="popularity",
                    status=RunStatus.SUCCEEDED,
                    metrics=run.metrics,
                    finished_at=run.finished_at,
                    parent=run,
                )
                for _ in range(count)
            ]
        )

    add_runs(3)
    urls = ["/scenarios/", "/scenarios/movies/", f"/runs/{run.pk}/", "/scenarios/movies/compare/", "/data/"]
    few = {url: _queries(viewer, url) for url in urls}
    add_runs(40)
    many = {url: _queries(viewer, url) for url in urls}
    assert many == few


def test_the_training_curve_names_a_students_agreement_with_its_teacher_apart_from_validation():
    history = [{"phase": "train", "epoch": 1, "loss": 2.0, "ndcg@10": 0.1, "teacher_agreement@10": 0.4},
               {"phase": "train", "epoch": 2, "loss": 1.5, "ndcg@10": 0.2, "teacher_agreement@10": 0.6}]  # fmt: skip

    figure = training_curve(history)

    traces = {trace.name: list(trace.y) for trace in figure.data}
    assert traces == {"training loss": [2.0, 1.5], "validation ndcg@10": [0.1, 0.2],
                      "teacher agreement@10": [0.4, 0.6]}  # fmt: skip


def test_the_training_curve_marks_the_kept_epoch():
    history = [{"phase": "train", "epoch": epoch, "loss": 1.0 / epoch, "ndcg@10": 0.1} for epoch in (1, 2, 3)]

    assert not training_curve(history).layout.shapes
    (line,) = training_curve(history, kept_epoch=2).layout.shapes
    assert (line.x0, line.x1, line.line.dash) == (2, 2, "dot")
