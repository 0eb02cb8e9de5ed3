"""Dashboard pages through Django's test client: roles, forms, pages, exports, query counts."""

from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.contrib.staticfiles import finders
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboards.figures import histogram, long_tail, metric_timeline, training_curve
from scenarios.models import Scenario
from tests.factories import START, clustered_catalog, scenario, scenario_form, trained
from training.models import RunStatus, TrainingRun
from training.selectors import TimelinePoint
from training.services import training_run_promote
from training.serving import model_cache

pytestmark = pytest.mark.django_db


def test_pages_need_a_login(client):
    response = client.get("/scenarios/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_viewer_reads_every_page_but_cannot_retrain_or_edit(viewer):
    clustered_catalog()
    movies = scenario()
    run = trained(movies, "item_knn")
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


def test_the_scenario_list_says_just_now_for_a_run_started_seconds_ago(viewer):
    TrainingRun.objects.create(scenario=scenario(), algorithm="popularity")

    page = viewer.get("/scenarios/").content.decode()

    assert "just now" in page and "0\xa0minutes" not in page


def test_the_scenario_list_says_how_long_ago_an_older_run_started(viewer):
    run = TrainingRun.objects.create(scenario=scenario(), algorithm="popularity")
    TrainingRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(hours=3, minutes=5))

    page = viewer.get("/scenarios/").content.decode()

    assert "3\xa0hours, 5\xa0minutes ago" in page and "just now" not in page


def test_an_analyst_retrains_from_the_page(analyst):
    clustered_catalog()
    scenario()
    response = analyst.post("/scenarios/movies/retrain/")
    assert response.status_code == 302
    assert TrainingRun.objects.get().created_by.username == "anna"


def _form(**overrides) -> dict:
    return scenario_form("item_knn", {"k": "50", "shrink": "0"}, **overrides)


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
    run = trained(scenario(), "bpr")
    page = viewer.get(f"/runs/{run.pk}/").content.decode()
    assert 'id="curve-plot"' in page and 'id="metrics-plot"' in page
    assert run.artifact_sha256 in page and 'data-testid="lineage"' in page
    assert 'data-testid="slices-table"' in page
    assert "plotly/plotly-cartesian.min.js" in page
    assert run.kept_epoch and f"kept the weights of epoch {run.kept_epoch}<" in page


def test_compare_page_shows_intervals_tests_and_histogram(viewer):
    clustered_catalog()
    movies = scenario()
    first, second = trained(movies, "popularity"), trained(movies, "ease")
    page = viewer.get(f"/scenarios/movies/compare/?runs={first.pk}&runs={second.pk}").content.decode()
    assert 'id="compare-plot"' in page and 'id="difference-plot"' in page
    assert 'data-testid="tests-table"' in page and "ndcg@10" in page


def test_samples_page_shows_history_both_lists_and_explanations(viewer):
    model_cache.clear()
    clustered_catalog()
    movies = scenario()
    live = trained(movies, "item_knn")
    other = trained(movies, "ease")
    training_run_promote(run=live)
    page = viewer.get(f"/scenarios/movies/samples/?user=u4&run={other.pk}&k=5").content.decode()
    assert page.count('data-testid="recommendations"') == 2
    assert "because you liked" in page


def test_csv_exports(viewer):
    clustered_catalog()
    run = trained(scenario(), "bpr")
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
    run = trained(movies, "popularity")

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


@pytest.mark.parametrize("k", ["abc", "-3", "1e9"])
def test_a_samples_k_that_is_not_a_whole_number_is_a_400_with_a_message(viewer, k):
    scenario()

    response = viewer.get(f"/scenarios/movies/samples/?user=u4&k={k}")

    assert response.status_code == 400 and "k must be" in response.json()["detail"]


def _point(run_id: int, minutes: float, value: float | None, algorithm: str = "ease", is_live: bool = False):
    return TimelinePoint(run_id, algorithm, START + timedelta(minutes=minutes), value, is_live)


def test_a_one_run_timeline_has_readable_dates_and_a_range_from_zero():
    figure = metric_timeline([_point(1, 0, 0.31)], [], "ndcg@10")

    low, high = figure.layout.yaxis.range
    assert low == 0 and 0.31 < high <= 0.31 * 1.2
    start, end = (datetime.fromisoformat(str(bound)) for bound in figure.layout.xaxis.range)
    assert end - start >= timedelta(hours=12)  # ticks in hours or days, not in fractions of a second


def test_a_timeline_range_ignores_runs_without_the_metric():
    figure = metric_timeline([_point(1, 0, None), _point(2, 5, 0.5)], [], "ndcg@10")

    assert list(figure.layout.yaxis.range) == [0, pytest.approx(0.55)]


def test_promotions_are_hoverable_markers_not_overlapping_labels():
    promotions = [
        SimpleNamespace(created_at=START + timedelta(seconds=s), action="promote", run_id=s, actor=None) for s in (1, 2)
    ]

    figure = metric_timeline([_point(1, 0, 0.3)], promotions, "ndcg@10")

    assert not figure.layout.annotations
    (marks,) = [trace for trace in figure.data if trace.name == "promotions"]
    assert len(marks.x) == 2 and "promote run 1" in marks.text[0]


def test_log_axes_label_decades_or_one_two_five_never_every_minor_tick():
    tail = long_tail([500, 120, 40, 9, 3, 1] * 5, title="tail", x_title="rank")
    users = histogram([1, 5, 20, 300] * 30, title="users", x_title="events", log_y=True)
    narrow = long_tail([14, 12, 9, 8], title="tail", x_title="rank")

    assert (tail.layout.yaxis.dtick, users.layout.yaxis.dtick) == (1, 1)  # 1 to 500, 1 to 120: one label a decade
    ranks = set(tail.layout.xaxis.tickvals)  # ranks 1 to 30, one to two decades: 1, 2 and 5 times powers of ten
    assert {1, 2, 5, 10, 20} <= ranks and ranks <= {m * 10**e for m in (1, 2, 5) for e in range(4)}
    assert narrow.layout.yaxis.dtick == "D1"  # 8 to 14: every digit, a handful of labels


def test_a_histogram_of_whole_numbers_has_whole_ticks():
    figure = histogram([8, 9, 9, 10, 10, 10], title="users", x_title="events per user")

    assert (figure.layout.xaxis.dtick, figure.layout.xaxis.tickformat) == (1, ",d")


def test_the_training_curve_ticks_whole_epochs():
    history = [{"phase": "train", "epoch": epoch, "loss": 1.0 / epoch} for epoch in (1, 2, 3)]
    long = [{"phase": "train", "epoch": epoch, "loss": 1.0 / epoch} for epoch in range(1, 61)]

    assert training_curve(history).layout.xaxis.dtick == 1
    assert training_curve(long).layout.xaxis.dtick == 10


def test_a_one_step_model_says_so_instead_of_a_one_dot_curve(viewer):
    clustered_catalog()
    run = trained(scenario(), "ease")

    page = viewer.get(f"/runs/{run.pk}/").content.decode()

    assert "Trained in one step" in page and 'id="curve-plot"' not in page


def test_the_served_plotly_bundle_is_the_version_plotly_writes_figures_for():
    from plotly.offline import get_plotlyjs_version

    bundle = finders.find("plotly/plotly-cartesian.min.js")

    header = Path(bundle).read_text(encoding="utf-8")[:200]
    assert f"v{get_plotlyjs_version()}\n" in header
    assert Path(bundle).stat().st_size < 2_000_000  # the cartesian traces only, not the 4.8 MB full bundle
