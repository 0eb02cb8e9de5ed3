"""The views an analyst explores with: groups in the scenario list, the slice definition, the sortable runs
table, the user and item browser, and the sample-recommendations page's hints."""

import csv
import io
import re
from html import unescape

import pytest

from scenarios.services import scenario_update
from tests.factories import clustered_catalog, scenario
from training.models import RunStatus, TrainingRun
from training.services import training_run_create, training_run_execute, training_run_promote

pytestmark = pytest.mark.django_db


def _run(movies, algorithm: str, **params) -> TrainingRun:
    run = training_run_create(scenario=movies, algorithm=algorithm, params=params)
    assert training_run_execute(run_id=run.pk, device="cpu") == RunStatus.SUCCEEDED
    return TrainingRun.objects.get(pk=run.pk)


@pytest.fixture
def viewer(client, admin_user):
    client.force_login(admin_user)
    return client


def _text(response) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", response.content.decode(), flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def test_the_scenario_list_shows_groups_with_their_members_under_them(viewer):
    clustered_catalog()
    group = scenario(slug="all", name="All films")
    scenario(slug="action", name="Action shelf", include_categories=["Action"], parent=group)
    scenario(slug="zebra", name="Zebra")

    page = _text(viewer.get("/scenarios/"))

    assert "group of action · matrix" in page and "member of all" in page
    assert page.index("All films") < page.index("Action shelf") < page.index("Zebra")


def test_the_scenario_page_shows_the_slice_definition(viewer):
    clustered_catalog()
    scenario(include_categories=["Action", "Comedy"], event_weights={"rating": 2.0}, min_value=3, min_user_events=4)

    page = _text(viewer.get("/scenarios/movies/"))

    assert (
        "items in Action, Comedy; events rating × 2, value at least 3; users with at least 4 events, "
        "items with at least 1" in page
    )


def _table_runs(response) -> list[int]:
    return [int(n) for n in re.findall(r'<tr data-run="(\d+)"', response.content.decode())]


def test_the_runs_table_sorts_by_any_metric_or_hyperparameter_with_missing_values_last(viewer):
    clustered_catalog()
    movies = scenario(algorithm="ease")
    strong, weak = _run(movies, "ease", l2=10.0), _run(movies, "ease", l2=5000.0)
    queued = training_run_create(scenario=movies, algorithm="item_knn", params={})
    assert strong.metrics["ndcg@10"] != weak.metrics["ndcg@10"]
    high, low = sorted((strong, weak), key=lambda run: -run.metrics["ndcg@10"])

    down = viewer.get("/scenarios/movies/runs/", {"sort": "metric:ndcg@10", "order": "desc"})
    up = viewer.get("/scenarios/movies/runs/", {"sort": "metric:ndcg@10", "order": "asc"})
    by_l2 = viewer.get("/scenarios/movies/runs/", {"sort": "param:l2", "order": "asc"})

    assert _table_runs(down) == [high.pk, low.pk, queued.pk]
    assert _table_runs(up) == [low.pk, high.pk, queued.pk]
    assert _table_runs(by_l2) == [strong.pk, weak.pk, queued.pk]
    headings = re.findall(r'data-sort="([^"]+)"', down.content.decode())
    assert {"metric:ndcg@5", "metric:recall@20", "metric:coverage@10", "param:l2", "param:k"} <= set(headings)
    assert 'href="?sort=metric%3Andcg%4010&amp;order=asc"' in down.content.decode()  # a second click reverses


def test_the_runs_table_exports_its_columns_as_csv(viewer):
    clustered_catalog()
    movies = scenario(algorithm="ease")
    run = _run(movies, "ease", l2=10.0)
    _run(movies, "ease", l2=20.0)

    response = viewer.get("/scenarios/movies/runs/", {"export": "csv", "params": "all"})

    header, *rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert header[:7] == ["run", "algorithm", "status", "created", "duration", "seed", "parent"]
    assert "ndcg@10" in header and "l2" in header and len(rows) == 2
    row = next(row for row in rows if row[0] == str(run.pk))
    assert float(row[header.index("ndcg@10")]) == pytest.approx(run.metrics["ndcg@10"])
    assert float(row[header.index("l2")]) == 10.0


def test_a_bad_sort_column_falls_back_to_newest_first(viewer):
    clustered_catalog()
    movies = scenario()
    first, second = _run(movies, "popularity"), _run(movies, "popularity")

    response = viewer.get("/scenarios/movies/runs/", {"sort": "metric:{'x'}", "order": "sideways"})

    assert response.status_code == 200 and _table_runs(response) == [second.pk, first.pk]


def test_the_browser_finds_users_and_items_and_shows_events_recommendations_and_similar_items(viewer):
    clustered_catalog()
    movies = scenario(algorithm="item_knn")
    training_run_promote(run=_run(movies, "item_knn"))

    found = _text(viewer.get("/scenarios/movies/browse/", {"q": "u1"}))
    user = viewer.get("/scenarios/movies/browse/", {"user": "u1"})
    item = viewer.get("/scenarios/movies/browse/", {"item": "i3"})

    assert "Users matching “u1”" in found and "u10" in found
    html = user.content.decode()
    events = html.split('data-testid="user-events"')[1].split("</table>")[0].count("<tr><td>")
    assert f"all {events} events" in _text(user) and events >= 8
    assert len(re.findall(r"<li><a href=\"\?item=", html)) == 10  # ten recommendations, each a link to the item
    item_text = _text(item)
    assert "Item 3" in item_text and "Similar items" in item_text
    similar = re.findall(r'<li><a href="\?item=i(\d+)"', item.content.decode())
    assert len(similar) == 10 and "3" not in similar


def test_the_browser_without_a_live_model_says_what_to_do(viewer):
    clustered_catalog()
    scenario()

    page = _text(viewer.get("/scenarios/movies/browse/", {"user": "u1"}))

    assert "No live model yet: promote a succeeded run from its page." in page


def test_a_random_user_is_one_with_events(viewer):
    clustered_catalog()
    scenario()

    browse = viewer.get("/scenarios/movies/browse/", {"random": "user"})
    samples = viewer.get("/scenarios/movies/samples/", {"random": "user", "k": "5"})

    assert browse.status_code == 302 and re.search(r"/browse/\?user=u\d+$", browse["Location"])
    assert samples.status_code == 302 and re.search(r"/samples/\?user=u\d+&run=&k=5$", samples["Location"])


def test_the_samples_page_states_its_cap_names_columns_once_and_suggests_ids(viewer):
    clustered_catalog(items=150, per_user=40)
    movies = scenario()
    live, other = _run(movies, "popularity"), _run(movies, "item_knn")
    training_run_promote(run=live)

    page = _text(viewer.get("/scenarios/movies/samples/", {"user": "u1", "run": other.pk}))
    missing = _text(viewer.get("/scenarios/movies/samples/", {"user": "3"}))

    assert re.search(r"The 30 most recent of \d\d events\.", page)
    assert f"Live model · run {live.pk} popularity" in page and f"Run {other.pk} item_knn" in page
    assert f"run {other.pk} run {other.pk}" not in page.lower()
    assert "No end user 3. Ids containing it: u3 , u13 , u23 , u30 ," in missing  # links, then commas


def test_the_samples_page_without_runs_says_to_retrain(viewer):
    clustered_catalog()
    scenario()

    page = _text(viewer.get("/scenarios/movies/samples/", {"user": "u1"}))

    assert "No list to show: the scenario has no succeeded run yet." in page
    assert "retrain it from its page" in page


def test_a_member_keeps_its_group_after_an_edit(viewer):
    clustered_catalog()
    group = scenario(slug="all", name="All")
    member = scenario(slug="action", include_categories=["Action"], parent=group)
    scenario_update(scenario=member, data={"name": "Action!"})

    assert "member of all" in _text(viewer.get("/scenarios/"))


def test_promote_and_rollback_pages_refuse_an_empty_reason(viewer):
    clustered_catalog()
    movies = scenario()
    first, second = _run(movies, "popularity"), _run(movies, "item_knn")
    training_run_promote(run=first)
    training_run_promote(run=second)

    promote = viewer.post(f"/runs/{first.pk}/promote/", {"reason": "  "}, follow=True)
    rollback = viewer.post("/scenarios/movies/rollback/", {"reason": ""}, follow=True)

    assert "give a reason" in _text(promote) and "give a reason" in _text(rollback)
    movies.refresh_from_db()
    assert movies.live_run_id == second.pk and movies.promotions.count() == 2


def test_the_compare_page_promotes_with_a_reason(viewer):
    clustered_catalog()
    movies = scenario()
    first, second = _run(movies, "popularity"), _run(movies, "item_knn")
    url = f"/scenarios/movies/compare/?runs={first.pk}&runs={second.pk}"
    page = viewer.get(url).content.decode()
    assert f'data-testid="compare-promote-reason-{second.pk}"' in page

    viewer.post(f"/runs/{second.pk}/promote/", {"reason": "wins the paired test", "next": url})

    assert movies.promotions.get().reason == "wins the paired test"


@pytest.mark.parametrize(
    "query",
    [
        {"user": "u1\x00"},
        {"item": "\x00"},
        {"q": "a\x00b"},
    ],
)
@pytest.mark.parametrize("page", ["browse", "samples"])
def test_a_nul_character_in_a_query_is_a_400_not_a_500(viewer, page, query):
    clustered_catalog()
    scenario()

    response = viewer.get(f"/scenarios/movies/{page}/", query)

    assert response.status_code == 400
    assert "NUL" in response.content.decode()
