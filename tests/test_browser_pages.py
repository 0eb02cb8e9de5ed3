"""Pages judged in a real Chromium: form errors at once, an unknown category refused, the navigation on a phone,
no horizontal scrolling at 1024 px and no failed request (favicon included)."""

import os
import re

import pytest

from dashboards.services import account_create
from scenarios.models import Scenario
from scenarios.services import scenario_slice_refresh
from tests.factories import clustered_catalog, scenario
from tests.test_browser import ARGS, CHROMIUM, _login, fill_scenario_form
from training.models import RunStatus, TrainingRun
from training.services import training_run_create, training_run_execute

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def chromium():
    # Playwright's sync API runs an event loop in this thread; the ORM calls in the test are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def analyst_page(live_server, chromium):
    def open_page(viewport: dict | None = None):
        account_create(username="anna", password="analyst-pass-123", role="analyst")
        page = chromium.new_page(viewport=viewport or {"width": 1280, "height": 900})
        _login(page, live_server.url, "anna", "analyst-pass-123")
        return page

    return open_page


def _page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_every_form_error_shows_on_the_first_submit(live_server, analyst_page):
    page = analyst_page()
    page.goto(f"{live_server.url}/scenarios/new/")
    fill_scenario_form(page, {"slug": "films", "name": "Films", "k_list": "five"}, "sasrec", embedding_size="0")

    page.click("[data-testid=save-scenario]")

    assert page.locator("[data-testid=hp-error-embedding_size]").is_visible()
    assert page.locator("[data-testid=error-k_list]").is_visible()
    summary = page.locator("[data-testid=form-errors]").inner_text()
    assert "embedding size" in summary and "hyperparameters." not in summary
    assert not Scenario.objects.exists()


def test_an_unknown_category_is_refused_with_a_suggestion(live_server, analyst_page):
    clustered_catalog()
    page = analyst_page()
    page.goto(f"{live_server.url}/scenarios/new/")
    fill_scenario_form(page, {"slug": "comedies", "name": "Comedies", "include_categories": "Comdy"})

    page.click("[data-testid=save-scenario]")

    error = page.locator("[data-testid=error-include_categories]")
    assert error.is_visible() and "did you mean Comedy" in error.inner_text()
    assert not Scenario.objects.exists()
    page.click("[data-testid=cancel]")
    page.wait_for_url(re.compile(r".*/scenarios/$"))


OFFERED = "(menu) => [...menu.options].filter((option) => !option.hidden && !option.disabled).map((o) => o.value)"


def test_the_objective_decides_which_algorithms_the_forms_offer(live_server, analyst_page):
    page = analyst_page()
    page.goto(f"{live_server.url}/scenarios/new/")
    page.fill("input[name=slug]", "rated")
    page.fill("input[name=name]", "Rated")
    menu = page.locator("select[name=algorithm]")
    ranking = set(menu.evaluate(OFFERED))

    page.select_option("select[name=objective]", "rating")
    rating = set(menu.evaluate(OFFERED))
    chosen_on_switch = menu.input_value()
    shown_on_switch = page.locator(f".hyperparameters[data-algorithm={chosen_on_switch}]").is_visible()
    page.select_option("select[name=algorithm]", "biased_mf")
    page.click("[data-testid=save-scenario]")
    page.wait_for_url(re.compile(r".*/scenarios/rated/$"))
    page.click("[data-testid=tune] summary")
    tunable = {box.get_attribute("value") for box in page.locator("[data-testid=tune] input[name=algorithms]").all()}

    assert {"ease", "sasrec", "auto"} <= ranking and not ranking & {"biased_mf", "neural_mf"}
    assert rating == {"auto", "biased_mf", "neural_mf"} and chosen_on_switch in rating
    assert shown_on_switch
    assert Scenario.objects.values_list("objective", "algorithm").get() == ("rating", "biased_mf")
    assert tunable == {"biased_mf", "neural_mf"}
    assert page.locator("[data-testid=study-objective]").input_value() == "rmse"


def test_the_navigation_fits_a_phone_and_logs_out(live_server, analyst_page):
    clustered_catalog()
    scenario()
    page = analyst_page(PHONE)
    page.goto(f"{live_server.url}/scenarios/")
    logout = page.get_by_role("button", name="Log out")

    box = logout.bounding_box()
    assert logout.is_visible() and box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert _page_width(page) <= PHONE["width"]
    colour = logout.evaluate("(element) => getComputedStyle(element).color")
    assert colour == "rgb(248, 250, 252)"  # light text on the dark bar

    logout.click()
    page.goto(f"{live_server.url}/scenarios/")
    assert "/accounts/login/" in page.url


def _trained(movies: Scenario, algorithm: str) -> TrainingRun:
    run = training_run_create(scenario=movies, algorithm=algorithm, params={})
    assert training_run_execute(run_id=run.pk, device="cpu") == RunStatus.SUCCEEDED
    return run


def test_pages_fit_1024_pixels_and_every_request_succeeds(live_server, analyst_page):
    clustered_catalog()
    movies = scenario()
    run = _trained(movies, "ease")
    page = analyst_page({"width": 1024, "height": 800})
    failures, script_errors, drawn = [], [], 0
    page.on("response", lambda response: failures.append(response.url) if response.status >= 400 else None)
    page.on("pageerror", lambda error: script_errors.append(str(error)))

    for url in ("/scenarios/", "/scenarios/movies/", f"/runs/{run.pk}/", "/data/", "/scenarios/new/", "/admin/"):
        page.goto(f"{live_server.url}{url}")
        page.wait_for_load_state("networkidle")
        charts = page.locator(".plotly-graph-div")
        # every chart drawn by the served bundle (a trace type it lacks would leave the div empty)
        assert charts.locator(".main-svg").count() >= charts.count(), url
        drawn += charts.count()
        assert _page_width(page) <= 1024, url

    assert not failures and not script_errors
    assert drawn >= 5  # the timeline, the run's metrics and the data page's charts
    assert page.request.get(f"{live_server.url}/favicon.ico").status == 200


def test_the_login_inputs_line_up(live_server, chromium):
    page = chromium.new_page(viewport={"width": 1024, "height": 800})
    page.goto(f"{live_server.url}/accounts/login/")

    username = page.locator("input[name=username]").bounding_box()
    password = page.locator("input[name=password]").bounding_box()

    assert username is not None and password is not None
    assert username["x"] == password["x"] and username["width"] == password["width"]


def test_no_form_label_is_cut_off(live_server, analyst_page):
    clustered_catalog()
    page = analyst_page({"width": 1024, "height": 800})
    page.goto(f"{live_server.url}/scenarios/new/")

    clipped = page.evaluate(
        """() => [...document.querySelectorAll('label, select, legend')]
             .filter((element) => element.offsetParent !== null && element.scrollWidth > element.clientWidth + 1)
             .map((element) => element.textContent.trim().slice(0, 40))"""
    )
    queue = page.locator("select[name=compute_queue]")

    assert clipped == []
    assert queue.evaluate("(select) => select.scrollWidth <= select.clientWidth + 1")


def test_counts_have_thousands_separators(live_server, analyst_page):
    clustered_catalog(users=150, items=30, per_user=10)
    scenario_slice_refresh(scenario=scenario())
    page = analyst_page()

    page.goto(f"{live_server.url}/scenarios/")
    events = page.locator("tbody tr").first.locator("td.number").nth(2).inner_text()
    page.goto(f"{live_server.url}/data/")

    assert re.fullmatch(r"1,\d{3}", events)
    assert re.search(r"1,\d{3} interactions", page.locator("body").inner_text())
