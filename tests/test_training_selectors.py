"""Reads behind the dashboards: runs chosen for a comparison, the group matrix as a table, sample lists."""

import pytest

from catalog.models import EndUser
from scenarios.services import scenario_create
from tests.factories import clustered_catalog, scenario, trained
from training.matrix import group_split_now
from training.models import MatrixCell, RunStatus, TrainingRun
from training.selectors import group_matrix_table, runs_chosen, sample_lists, sample_lists_shared
from training.services import training_run_promote
from training.serving import model_cache

pytestmark = pytest.mark.django_db


def _run(scenario, status=RunStatus.SUCCEEDED, parent=None, protocol=None) -> TrainingRun:
    return TrainingRun.objects.create(
        scenario=scenario, algorithm="popularity", status=status, parent=parent, protocol=protocol or {}
    )


def test_runs_chosen_keeps_the_asked_order_and_only_succeeded_runs_of_the_scenario():
    movies = scenario()
    books = scenario_create(data={"slug": "books", "name": "Books"})
    first, second, queued, elsewhere = _run(movies), _run(movies), _run(movies, RunStatus.QUEUED), _run(books)

    chosen = runs_chosen(scenario=movies, ids=[second.pk, queued.pk, elsewhere.pk, first.pk, second.pk])

    assert chosen == [second, first]


def test_the_matrix_table_gives_each_cell_its_state_and_its_change_against_the_member_baseline():
    group = scenario_create(data={"slug": "all", "name": "All", "split": "leave_last_out"})
    action = scenario_create(data={"slug": "action", "name": "Action", "parent": group})
    drama = scenario_create(data={"slug": "drama", "name": "Drama", "parent": group})
    protocol = {"split": "leave_last_out"}
    split = group_split_now(group=group)
    alone, on_group = _run(action, protocol=protocol), _run(group, protocol=protocol)
    TrainingRun.objects.filter(pk__in=[alone.pk, on_group.pk]).update(split=split)  # both trained on it
    MatrixCell.objects.create(run=alone, scenario=action, metrics={"ndcg@10": 0.25}, split=split,
                              validation={"ndcg@10": 0.2})  # fmt: skip
    MatrixCell.objects.create(run=on_group, scenario=action, metrics={"ndcg@10": 0.5}, split=split)
    MatrixCell.objects.create(run=on_group, scenario=drama, metrics={"ndcg@10": 0.125}, split={"protocol": "random"})

    table = group_matrix_table(group=group)

    assert [run.pk for run in table.matrix.runs] == [alone.pk, on_group.pk]  # by scenario slug
    assert table.values == [[0.25, None], [0.5, 0.125]]
    assert table.states == [["ok", "n/a"], ["ok", "stale"]]
    assert table.deltas == [[0.0, None], [0.25, None]]  # drama has no baseline, and its cell is stale
    assert table.labels[1] == f"run {on_group.pk} · popularity · all"
    assert not table.complete


def test_sample_lists_put_another_run_beside_the_live_one_and_never_the_live_one_twice():
    model_cache.clear()
    clustered_catalog()
    movies = scenario()
    live, other = trained(movies, "popularity"), trained(movies, "popularity")
    training_run_promote(run=live)
    movies.refresh_from_db()
    user = EndUser.objects.get(external_id="u4")

    both = sample_lists(scenario=movies, user=user, k=5, other=other)
    only_live = sample_lists(scenario=movies, user=user, k=5, other=live)

    assert [entry.title for entry in both] == [f"Live model · run {live.pk}", f"Run {other.pk}"]
    assert [entry.title for entry in only_live] == [f"Live model · run {live.pk}"]
    assert sample_lists_shared(both) == {item.item_id for item in both[0].items}  # same algorithm, same data
    assert sample_lists_shared(only_live) == set()


def test_a_failed_run_gives_its_list_an_error_instead_of_a_500():
    movies = scenario()
    failed = _run(movies, RunStatus.FAILED)
    user = EndUser.objects.create(external_id="someone")

    [entry] = sample_lists(scenario=movies, user=user, k=5, other=failed)

    assert entry.items == [] and "failed" in entry.error
