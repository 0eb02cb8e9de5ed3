"""Compare cannot mislead: paired tests only on the same test pairs, an explicit baseline, what differs, every K.

Findings guarded: runs tested on different data snapshots were paired without a word; "the first one picked is the
baseline" was the URL's order; the CSV had no p-values.
"""

import csv
import io
from datetime import timedelta

import pytest

from catalog.services import EventRow, interactions_ingest
from tests.factories import START, clustered_catalog, scenario, trained
from training.comparisons import runs_compare
from training.services import training_run_promote

pytestmark = pytest.mark.django_db


def _csv_rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def _more_events() -> None:
    """New events for existing users: the slice (its data snapshot) changes."""
    late = START + timedelta(days=900)
    interactions_ingest(
        events=[
            EventRow(user=f"u{user}", item=f"i{(user + 7) % 30}", kind="rating", value=4.0, occurred_at=late)
            for user in range(0, 40, 2)
        ]
    )


def test_runs_on_other_data_are_not_paired_and_the_page_says_why(viewer):
    clustered_catalog()
    movies = scenario(k_list=[5, 10])
    before = trained(movies, "popularity")
    _more_events()
    after = trained(movies, "ease")

    comparison = runs_compare(runs=[before, after], baseline=before)
    page = viewer.get(f"/scenarios/movies/compare/?runs={before.pk}&runs={after.pk}&baseline={before.pk}")

    assert comparison.tests["ndcg@10"] == [None, None] and after.pk in comparison.unpaired
    assert "data " in comparison.unpaired[after.pk] and f"than run {before.pk}" in comparison.unpaired[after.pk]
    html = page.content.decode()
    assert 'data-testid="unpaired"' in html and "no paired test applies" in html
    assert 'id="difference-plot"' not in html and 'id="compare-plot"' in html  # intervals only
    exported = _csv_rows(viewer.get(f"/scenarios/movies/compare/?runs={before.pk}&runs={after.pk}&export=compare"))
    assert all(row["p_paired_t"] == "" for row in exported)
    assert {row["not_paired_because"] != "" for row in exported if row["run"] == str(after.pk)} == {True}


def test_runs_on_the_same_split_are_paired_and_the_csv_carries_p_values_at_every_k(viewer):
    clustered_catalog()
    movies = scenario(k_list=[5, 10, 20])
    first, second = trained(movies, "popularity"), trained(movies, "ease")

    response = viewer.get(f"/scenarios/movies/compare/?runs={first.pk}&runs={second.pk}&export=compare")

    rows = _csv_rows(response)
    metrics = {row["metric"] for row in rows}
    assert {
        f"{name}@{k}" for name in ("ndcg", "recall", "precision", "map", "mrr", "hit") for k in (5, 10, 20)
    } <= metrics
    tested = [row for row in rows if row["run"] == str(second.pk)]
    assert tested and all(0 <= float(row["p_paired_t"]) <= 1 and row["p_wilcoxon"] for row in tested)
    assert all(row["baseline"] == str(first.pk) and row["not_paired_because"] == "" for row in rows)
    page = viewer.get(f"/scenarios/movies/compare/?runs={first.pk}&runs={second.pk}").content.decode()
    assert 'data-testid="means-table"' in page and "ndcg@20" in page and "ndcg@5" in page
    assert 'id="difference-plot"' in page and 'data-testid="unpaired"' not in page


def test_the_baseline_is_a_parameter_not_the_order_of_the_url(viewer):
    clustered_catalog()
    movies = scenario()
    first, second = trained(movies, "popularity"), trained(movies, "ease")
    url = f"/scenarios/movies/compare/?runs={second.pk}&runs={first.pk}"

    default = _csv_rows(viewer.get(f"{url}&export=compare"))
    picked = _csv_rows(viewer.get(f"{url}&baseline={second.pk}&export=compare"))
    page = viewer.get(f"{url}&baseline={second.pk}").content.decode()

    assert {row["baseline"] for row in default} == {str(first.pk)}  # the oldest, though listed second
    assert {row["baseline"] for row in picked} == {str(second.pk)}
    assert f'Baseline: <a href="/runs/{second.pk}/">run {second.pk}' in page and "(picked)" in page
    assert f"Paired tests against run {second.pk}" in page


def test_the_live_run_is_the_default_baseline():
    clustered_catalog()
    movies = scenario()
    first, second = trained(movies, "popularity"), trained(movies, "ease")
    training_run_promote(run=second, force=True, reason="test")
    movies.refresh_from_db()

    comparison = runs_compare(runs=[first, second], live_run_id=movies.live_run_id)

    assert comparison.baseline.pk == second.pk and comparison.baseline_reason.startswith("the live run")


def test_a_baseline_outside_the_compared_runs_is_a_400(viewer):
    clustered_catalog()
    movies = scenario()
    first, second = trained(movies, "popularity"), trained(movies, "ease")

    for bad in ("999999", "abc"):
        response = viewer.get(f"/scenarios/movies/compare/?runs={first.pk}&runs={second.pk}&baseline={bad}")
        assert response.status_code == 400
        assert "The baseline must be one of the runs compared" in response.content.decode()


def test_what_differs_lists_the_hyperparameters_seed_and_split_that_differ(viewer):
    clustered_catalog()
    movies = scenario(algorithm="item_knn", hyperparameters={"k": 50, "shrink": 10})
    first = trained(movies, "item_knn", seed=1)
    second = trained(movies, "item_knn", params={"shrink": 0}, seed=2)

    names = {row.name: row.values for row in runs_compare(runs=[first, second], baseline=first).differences}
    page = viewer.get(f"/scenarios/movies/compare/?runs={first.pk}&runs={second.pk}").content.decode()

    assert names["shrink"] == [10, 0] and names["seed"] == [1, 2] and "k" not in names
    assert "seed 1" in names["split"][0] and "seed 2" in names["split"][1]
    assert 'data-testid="differs-table"' in page and "<th>shrink</th>" in page
