"""Analyst flows in a real Chromium against a live server, the real PostgreSQL and a real worker.

Set RECSYS_SCREENSHOT_DIR to keep a screenshot of every page (docs/screenshots/ is made this way: the analyst's
flow with MovieLens 100K loaded from ../shared/data when it is there, the auto, study, blend and rating pages with
generated data).
"""

import os
import re
from pathlib import Path

import pytest
from django.core.management import call_command

from dashboards.services import account_create
from scenarios.models import Scenario
from scenarios.services import scenario_create, scenario_slice_refresh
from tests.conftest import ROOT, queued_runs_execute, run_trained, wait_until
from tests.factories import clustered_catalog
from training.models import RunStatus, Study, TrainingRun
from training.services import training_run_promote
from training.tuning.studies import study_create

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.celery, pytest.mark.django_db(transaction=True)]
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MOVIELENS = ROOT.parent / "shared" / "data" / "ml-100k"


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls in the test are still synchronous.
    # Allowed for this test only: monkeypatch puts the variable back when it ends.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def shots():
    folder = os.environ.get("RECSYS_SCREENSHOT_DIR")
    target = Path(folder) if folder else None
    if target:
        target.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> None:
        if target:
            page.screenshot(path=str(target / f"{name}.png"), full_page=True)

    return take


def _load_data() -> None:
    if MOVIELENS.is_dir():
        call_command("import_movielens", str(MOVIELENS), no_progress=True)
    else:
        clustered_catalog(users=60, items=40)


def _login(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/scenarios/$"))


def fill_scenario_form(page, fields: dict[str, str], algorithm: str | None = None, **hyperparameters: str) -> None:
    """Type ``fields`` into the scenario form's inputs by name, then choose ``algorithm`` and type its
    ``hyperparameters``."""
    for name, value in fields.items():
        page.fill(f"input[name={name}]", value)
    if algorithm:
        page.select_option("select[name=algorithm]", algorithm)
    for name, value in hyperparameters.items():
        page.fill(f"[data-algorithm={algorithm}] [data-testid=hp-{name}]", value)


def test_analyst_creates_retrains_inspects_compares_and_samples(live_server, celery_worker, browser, shots):
    _load_data()
    account_create(username="anna", password="analyst-pass-123", role="analyst")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    # Anything the Content-Security-Policy blocks (an inline script, a handler) is reported on the console.
    blocked = []
    page.on(
        "console", lambda message: blocked.append(message.text) if "Content Security Policy" in message.text else None
    )
    base = live_server.url
    _login(page, base, "anna", "analyst-pass-123")

    # Create a scenario through the form; a bad hyperparameter first shows its error next to the field.
    page.click("[data-testid=new-scenario]")
    form = {"slug": "movies", "name": "Movies", "event_weights": "rating:1", "min_value": "3"}
    fill_scenario_form(page, form, "item_knn", k="-5")
    page.click("[data-testid=save-scenario]")
    assert page.locator("[data-testid=hp-error-k]").is_visible()
    shots(page, "scenario-form")
    page.fill("[data-algorithm=item_knn] [data-testid=hp-k]", "100")
    page.click("[data-testid=save-scenario]")
    page.wait_for_url(re.compile(r".*/scenarios/movies/$"))

    # Retrain twice (two algorithms) and watch the progress bar reach 100% without reloading.
    page.click("[data-testid=retrain]")
    row = page.locator("[data-testid=runs-table] tbody tr").first
    row.locator("[data-field=progress]", has_text="100%").wait_for(timeout=120_000)
    assert row.locator("[data-field=status]").inner_text() == "succeeded"
    first = TrainingRun.objects.get()
    training_run_promote(run=first, force=True, reason="the first model of this scenario")
    Scenario.objects.filter(slug="movies").update(algorithm="ease", hyperparameters={"l2": 250.0})
    page.click("[data-testid=retrain]")
    page.locator("[data-testid=runs-table] tbody tr").first.locator("[data-field=progress]", has_text="100%").wait_for(
        timeout=120_000
    )
    second = TrainingRun.objects.exclude(pk=first.pk).get()
    assert second.status == RunStatus.SUCCEEDED
    shots(page, "scenario-runs")

    # The run page renders its plots.
    page.goto(f"{base}/runs/{second.pk}/")
    page.locator("#metrics-plot .main-svg").first.wait_for()
    assert page.locator("[data-testid=metrics-table]").is_visible()
    shots(page, "run")
    page.fill("[data-testid=promote-reason]", "best NDCG@10 so far")
    page.click("[data-testid=promote]")
    page.wait_for_url(re.compile(rf".*/runs/{second.pk}/$"))

    # Compare the two runs.
    page.goto(f"{base}/scenarios/movies/compare/")
    page.check(f"input[name=runs][value='{first.pk}']")
    page.check(f"input[name=runs][value='{second.pk}']")
    page.click("[data-testid=compare-submit]")
    page.locator("#compare-plot .main-svg").first.wait_for()
    assert page.locator("[data-testid=tests-table] tbody tr").count() >= 1
    shots(page, "compare")

    # Sample recommendations for a real user, live model beside the first run.
    user = first.evaluation.user_ids[0]
    from catalog.models import EndUser

    external_id = EndUser.objects.get(pk=user).external_id
    page.goto(f"{base}/scenarios/movies/samples/")
    page.fill("[data-testid=user-input]", external_id)
    page.select_option("select[name=run]", str(first.pk))
    page.click("[data-testid=samples-submit]")
    assert page.locator("[data-testid=recommendations]").count() == 2
    assert page.locator("[data-testid=history] tbody tr").count() > 0
    shots(page, "samples")

    # The runs table, the user and item browser and the serving history.
    page.goto(f"{base}/scenarios/movies/runs/?sort=metric:ndcg@10&order=desc")
    assert page.locator("[data-testid=runs-sortable] tbody tr").count() == 2
    shots(page, "runs-table")
    page.goto(f"{base}/scenarios/movies/browse/?user={external_id}")
    assert page.locator("[data-testid=user-recommendations] li").count() == 10
    shots(page, "browse-user")
    page.locator("[data-testid=user-recommendations] li a").first.click()
    page.locator("[data-testid=similar-items]").wait_for()
    shots(page, "browse-item")
    page.goto(f"{base}/scenarios/movies/")
    page.click("[data-testid=rollback] summary")
    assert page.locator("[data-testid=rollback-confirm]").inner_text() == f"Roll back to run {first.pk}"
    shots(page, "scenario-history")

    # A member scenario: the list shows it under its group.
    action = scenario_create(
        data={"slug": "action", "name": "Action shelf", "include_categories": ["Action"], "algorithm": "ease",
              "parent": Scenario.objects.get(slug="movies")}
    )  # fmt: skip
    scenario_slice_refresh(scenario=action)  # as the worker does after a save
    for url, name in (("/scenarios/", "scenarios"), ("/data/", "data")):
        page.goto(f"{base}{url}")
        page.wait_for_load_state("networkidle")
        shots(page, name)
    page.goto(f"{base}/scenarios/movies/")
    page.locator("#timeline-plot .main-svg").first.wait_for()
    page.goto(f"{base}/api/v1/docs/")
    page.locator(".swagger-ui .info").first.wait_for()
    assert blocked == []
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/scenarios/movies/")
    page.wait_for_load_state("networkidle")
    shots(page, "phone-scenario")
    page.goto(f"{base}/scenarios/")
    assert page.locator("[data-testid=group-members]").is_visible()
    shots(page, "phone-scenarios")


def test_a_viewer_cannot_retrain(live_server, browser):
    Scenario.objects.create(slug="movies", name="Movies")
    account_create(username="vera", password="viewer-pass-123", role="viewer")
    page = browser.new_page()
    _login(page, live_server.url, "vera", "viewer-pass-123")
    page.goto(f"{live_server.url}/scenarios/movies/")
    assert page.locator("[data-testid=retrain]").count() == 0  # hidden from the viewer

    token = page.locator("input[name=csrfmiddlewaretoken]").first.input_value()
    response = page.request.post(
        f"{live_server.url}/scenarios/movies/retrain/",
        form={"csrfmiddlewaretoken": token},
        headers={"Referer": f"{live_server.url}/scenarios/movies/"},
    )

    assert response.status == 403  # refused by the server, not just hidden
    assert not TrainingRun.objects.exists()


def test_the_newer_pages_draw_fit_and_load_everything_in_chromium(live_server, browser, shots):
    """An auto run's choice, a study, a blend and a rating run, at 1024 px and on a phone: every chart drawn by
    the served bundle, no horizontal scrolling, no failed request or script error."""
    clustered_catalog(users=150, items=60, per_user=14)
    movies = scenario_create(data={"slug": "movies", "name": "Movies", "algorithm": "ease"})
    ratings = scenario_create(
        data={"slug": "ratings", "name": "Predicted ratings", "objective": "rating", "algorithm": "biased_mf",
              "hyperparameters": {"factors": 8, "iterations": 8}}
    )  # fmt: skip
    ease, knn = run_trained(movies, "ease"), run_trained(movies, "item_knn")
    blend = run_trained(movies, "blend", members=[ease, knn])
    auto = run_trained(movies, "auto", params={"max_trials": 4})
    rating = run_trained(ratings, "biased_mf")
    study = study_create(scenario=movies, algorithms=["ease", "item_knn"], max_trials=6, parallel_trials=1)
    queued_runs_execute()
    wait_until(lambda: Study.objects.get(pk=study.pk).is_finished, timeout=300)
    account_create(username="anna", password="analyst-pass-123", role="analyst")
    page = browser.new_page(viewport={"width": 1024, "height": 800})
    failures, script_errors = [], []
    page.on("response", lambda response: failures.append(response.url) if response.status >= 400 else None)
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    _login(page, live_server.url, "anna", "analyst-pass-123")
    pages = {
        f"/runs/{auto.pk}/": "auto-run",
        f"/studies/{study.pk}/": "study",
        f"/runs/{blend.pk}/": "blend-run",
        f"/runs/{rating.pk}/": "rating-run",
        "/scenarios/ratings/": "rating-scenario",
    }

    for width, prefix in ((1024, ""), (390, "phone-")):
        page.set_viewport_size({"width": width, "height": 800})
        for url, name in pages.items():
            page.goto(f"{live_server.url}{url}")
            page.wait_for_load_state("networkidle")
            charts = page.locator(".plotly-graph-div")
            assert charts.count() >= 1 and charts.locator(".main-svg").count() >= charts.count(), url
            assert page.evaluate("document.documentElement.scrollWidth") <= width, (width, url)
            if name == "study":
                assert page.locator("[data-testid=study-promote-reason]").is_visible()
            if prefix == "" or name == "study":
                shots(page, f"{prefix}{name}")

    assert not failures and not script_errors
