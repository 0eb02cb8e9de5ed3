"""The registry in a real Chromium: a promotion needs a reason, the scenario page shows who changed what served
it, when and why, and Rollback names the run it puts back and walks the history backwards."""

import re

import pytest

from scenarios.models import Scenario
from tests.conftest import wait_until
from tests.factories import clustered_catalog, scenario
from tests.test_browser_pages import analyst_page, chromium  # noqa: F401 - fixtures
from training.models import Promotion, RunStatus, TrainingRun
from training.services import training_run_create, training_run_execute

playwright_api = pytest.importorskip("playwright.sync_api")

UNFINISHED = (RunStatus.QUEUED, RunStatus.RUNNING)
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _trained(movies: Scenario, algorithm: str) -> TrainingRun:
    run = training_run_create(scenario=movies, algorithm=algorithm, params={})
    # A worker started by an earlier test in this session may claim the run first; either way it must succeed.
    training_run_execute(run_id=run.pk, device="cpu")
    wait_until(lambda: TrainingRun.objects.filter(pk=run.pk).exclude(status__in=UNFINISHED).exists(), timeout=120)
    run = TrainingRun.objects.get(pk=run.pk)
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def _promote(page, base: str, run: TrainingRun, reason: str) -> None:
    page.goto(f"{base}/runs/{run.pk}/")
    page.click("[data-testid=promote]")  # without a reason the browser refuses to send the form
    assert Promotion.objects.filter(run=run).count() == 0
    page.fill("[data-testid=promote-reason]", reason)
    page.click("[data-testid=promote]")
    page.wait_for_url(re.compile(rf".*/runs/{run.pk}/$"))
    page.locator(".flash", has_text="is now live").wait_for()


def _roll_back(page, base: str, expected: TrainingRun, reason: str) -> None:
    page.goto(f"{base}/scenarios/movies/")
    page.click("[data-testid=rollback] summary")
    assert page.locator("[data-testid=rollback-confirm]").inner_text() == f"Roll back to run {expected.pk}"
    page.fill("[data-testid=rollback-reason]", reason)
    page.click("[data-testid=rollback-confirm]")
    page.locator(".flash", has_text=f"run {expected.pk} serves movies again").wait_for()


def test_promote_with_a_reason_then_roll_back_twice_from_the_scenario_page(live_server, analyst_page):  # noqa: F811
    clustered_catalog()
    movies = scenario()
    first, second, third = _trained(movies, "popularity"), _trained(movies, "item_knn"), _trained(movies, "ease")
    page = analyst_page()
    base = live_server.url
    for run in (first, second, third):
        _promote(page, base, run, f"reason for run {run.pk}")

    _roll_back(page, base, second, "third run misbehaves")
    _roll_back(page, base, first, "second one too")

    page.goto(f"{base}/scenarios/movies/")
    assert page.locator("[data-testid=rollback-none]").is_visible()
    assert page.locator("[data-testid=rollback]").count() == 0
    rows = page.locator("[data-testid=history] tbody tr")
    assert rows.count() == 5
    newest = rows.first.inner_text()
    assert "rollback" in newest and f"run {second.pk}" in newest and f"run {first.pk}" in newest
    assert "anna" in newest and "second one too" in newest
    assert "reason for run" in rows.nth(2).inner_text()
    assert TrainingRun.objects.get(pk=first.pk).scenario.live_run_id == first.pk
