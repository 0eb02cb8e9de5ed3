"""The runs table and the user and item browser in a real Chromium: sorting by a click on a heading, searching,
following a user to an item and the item to its similar items, and a random user."""

import re

import pytest

from scenarios.models import Scenario
from tests.conftest import wait_until
from tests.factories import clustered_catalog, scenario
from tests.test_browser_pages import analyst_page, chromium  # noqa: F401 - fixtures
from training.models import RunStatus, TrainingRun
from training.services import training_run_create, training_run_execute, training_run_promote

playwright_api = pytest.importorskip("playwright.sync_api")

UNFINISHED = (RunStatus.QUEUED, RunStatus.RUNNING)
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _trained(movies: Scenario, algorithm: str, **params) -> TrainingRun:
    run = training_run_create(scenario=movies, algorithm=algorithm, params=params)
    # A worker started by an earlier test in this session may claim the run first; either way it must succeed.
    training_run_execute(run_id=run.pk, device="cpu")
    wait_until(lambda: TrainingRun.objects.filter(pk=run.pk).exclude(status__in=UNFINISHED).exists(), timeout=120)
    run = TrainingRun.objects.get(pk=run.pk)
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def _order(page) -> list[int]:
    return [int(n) for n in page.locator("[data-testid=runs-sortable] tbody tr").evaluate_all(
        "rows => rows.map(row => row.dataset.run)")]  # fmt: skip


def test_the_runs_table_sorts_by_a_clicked_metric_and_reverses_on_a_second_click(live_server, analyst_page):  # noqa: F811
    clustered_catalog()
    movies = scenario(algorithm="ease")
    runs = [_trained(movies, "ease", l2=l2) for l2 in (1.0, 300.0, 20000.0)]
    by_ndcg = [run.pk for run in sorted(runs, key=lambda run: -run.metrics["ndcg@10"])]
    page = analyst_page()
    page.goto(f"{live_server.url}/scenarios/movies/")
    page.click("[data-testid=runs-table-link]")

    page.click("[data-sort='metric:ndcg@10']")
    page.wait_for_url(re.compile(r".*order=desc"))
    descending = _order(page)
    page.click("[data-sort='metric:ndcg@10']")
    page.wait_for_url(re.compile(r".*order=asc"))
    ascending = _order(page)
    page.click("[data-sort='param:l2']")
    page.wait_for_url(re.compile(r".*sort=param%3Al2.*"))

    assert descending == by_ndcg and ascending == by_ndcg[::-1]
    assert _order(page) == [runs[2].pk, runs[1].pk, runs[0].pk]  # l2 descending
    assert page.locator("th", has_text="recall@20").count() == 1


def test_the_browser_goes_from_a_search_to_a_user_to_an_item_and_its_similar_items(live_server, analyst_page):  # noqa: F811
    clustered_catalog()
    movies = scenario(algorithm="item_knn")
    training_run_promote(run=_trained(movies, "item_knn"))
    page = analyst_page()
    page.goto(f"{live_server.url}/scenarios/movies/")
    page.click("[data-testid=browse-link]")

    page.fill("[data-testid=browse-query]", "u1")
    page.click("[data-testid=browse-search]")
    page.locator("[data-testid=user-results] a", has_text=re.compile(r"^u1$")).click()
    assert page.locator("[data-testid=user-events] tbody tr").count() >= 8
    recommendations = page.locator("[data-testid=user-recommendations] li")
    assert recommendations.count() == 10
    first = recommendations.first.locator("a").inner_text()
    recommendations.first.locator("a").click()

    assert page.locator("[data-testid=browse-item]").inner_text().startswith(first)
    assert page.locator("[data-testid=similar-items] li").count() == 10
    assert page.locator("[data-testid=item-events] tbody tr").count() >= 1

    page.click("[data-testid=random-user]")
    page.wait_for_url(re.compile(r".*\?user=u\d+$"))
    assert page.locator("[data-testid=browse-user]").inner_text().startswith("User u")
