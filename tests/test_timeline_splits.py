"""Timelines and groups show change: a new slice, protocol or group marks the timeline and breaks its lines; the
scenario page says which split its runs used.

Finding guarded: a scenario that joined a group changed its split and data while the metrics-over-time chart drew
one line through runs on either side and the pages still named the old protocol.
"""

import pytest

from dashboards.figures import metric_timeline as timeline_figure
from scenarios.services import scenario_create, scenario_update
from tests.factories import clustered_catalog, scenario, trained
from training.selectors import metric_timeline

pytestmark = pytest.mark.django_db


def _line(figure, name: str) -> list:
    (trace,) = [trace for trace in figure.data if trace.name == name]
    return list(trace.y)


def test_a_new_protocol_marks_the_timeline_and_breaks_its_line(viewer):
    clustered_catalog()
    movies = scenario()
    trained(movies, "popularity"), trained(movies, "popularity")
    scenario_update(scenario=movies, data={"split": "temporal"})
    movies.refresh_from_db()
    after = trained(movies, "popularity")

    points, promotions, changes = metric_timeline(scenario=movies, metric="ndcg@10")

    assert [point.segment for point in points] == [0, 0, 1]
    (change,) = changes
    assert change.run_id == after.pk and "protocol random → temporal" in change.changes
    values = _line(timeline_figure(points, promotions, "ndcg@10", changes), "popularity")
    assert len(values) == 4 and values[2] is None  # no segment of line joins the two protocols
    page = viewer.get("/scenarios/movies/").content.decode()
    assert 'data-testid="timeline-changes"' in page and "protocol random → temporal" in page


def test_joining_a_group_marks_the_timeline_with_the_new_split():
    clustered_catalog(users=60, items=30, per_user=10)
    group = scenario_create(data={"slug": "all", "name": "All", "split": "leave_last_out"})
    action = scenario_create(
        data={"slug": "action", "name": "Action", "include_categories": ["Action"], "k_list": [5, 10]}
    )
    alone = trained(action, "popularity")
    scenario_update(scenario=action, data={"parent": group})
    action.refresh_from_db()
    member = trained(action, "popularity")

    points, _, changes = metric_timeline(scenario=action, metric="ndcg@10")

    assert [point.run_id for point in points] == [alone.pk, member.pk]
    assert [point.segment for point in points] == [0, 1]
    (change,) = changes
    assert "split of action → all" in change.changes and "protocol random → leave_last_out" in change.changes
    assert "of all" in points[1].split and "of action" in points[0].split


def test_a_new_slice_filter_marks_the_timeline_and_the_same_settings_do_not():
    clustered_catalog()
    movies = scenario()
    trained(movies, "popularity"), trained(movies, "ease")
    scenario_update(scenario=movies, data={"min_user_events": 3})
    movies.refresh_from_db()
    trained(movies, "popularity")

    _, _, changes = metric_timeline(scenario=movies, metric="ndcg@10")

    assert [change.changes for change in changes] == [["min user events 1 → 3"]]


def test_the_scenario_page_says_which_split_its_runs_used(viewer):
    clustered_catalog()
    movies = scenario()
    first = trained(movies, "popularity")
    scenario_update(scenario=movies, data={"split": "leave_last_out"})
    second = trained(movies, "popularity")

    page = viewer.get("/scenarios/movies/").content.decode()

    assert 'data-testid="split-uses"' in page
    assert f"random 80/10/10 · seed 42 · data {first.split['snapshot'][:8]} · of movies" in page
    assert f"leave-last-out · data {second.split['snapshot'][:8]} · of movies" in page
    assert "The next run is split <strong>leave-last-out · of movies</strong>" in page
