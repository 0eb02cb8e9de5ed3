"""Scenario groups: members split by the group's split; parent runs validated when a run is queued."""

import numpy as np
import pytest

from catalog.models import Item
from recsys_site.errors import ValidationFailed
from scenarios.services import scenario_create
from tests.factories import clustered_catalog
from training.data import training_data_load
from training.groups import item_map, member_data_load, prepared_data_load
from training.models import RunStatus, TrainingRun
from training.services import training_run_create, training_run_execute

pytestmark = pytest.mark.django_db


def _group():
    clustered_catalog(users=60, items=30, per_user=10)
    group = scenario_create(data={"slug": "all", "name": "All", "split": "leave_last_out"})
    # Each member has 10 items: K may not exceed a slice's catalogue.
    member = {"parent": group, "k_list": [5, 10]}
    action = scenario_create(data={"slug": "action", "name": "Action", "include_categories": ["Action"], **member})
    drama = scenario_create(data={"slug": "drama", "name": "Drama", "include_categories": ["Drama"], **member})
    return group, action, drama


def test_a_member_keeps_its_part_of_the_group_split():
    group, action, _ = _group()
    group_data = prepared_data_load(scenario=group, protocol={"split": "leave_last_out"}, seed=group.seed)
    member = member_data_load(member=action)

    group_test = set(group_data.training.event_ids[group_data.split.test_events])
    member_test = set(member.training.event_ids[member.split.test_events])
    member_train = set(member.training.event_ids[member.split.train_events])
    assert member_test and member_test <= group_test
    assert not member_train & group_test  # pretraining on the group never saw a member's test event
    assert set(member.training.event_ids) == set(training_data_load(scenario=action).event_ids)


def test_group_events_are_labelled_with_their_member():
    group, _, _ = _group()
    prepared = prepared_data_load(scenario=group, protocol={"split": "leave_last_out"}, seed=group.seed)
    assert prepared.domain_names == ["action", "drama"]
    assert set(np.unique(prepared.domains)) == {0, 1, 2}  # 2: the Comedy events, in no member
    assert len(prepared.domains) == prepared.training.data.n_events


def test_group_events_in_no_member_are_a_domain_of_their_own():
    group, _, _ = _group()  # the group holds Comedy too, which no member does
    prepared = prepared_data_load(scenario=group, protocol={"split": "leave_last_out"}, seed=group.seed)

    categories = dict(Item.objects.values_list("id", "categories"))
    expected = {"Action": 0, "Drama": 1, "Comedy": 2}
    item_ids = prepared.training.item_ids[prepared.training.data.items]
    labels = [expected[categories[int(item)][0]] for item in item_ids]

    assert prepared.domains.tolist() == labels and 2 in labels
    assert prepared.domain_names == ["action", "drama"]  # the rest has no member to be named after


def test_member_runs_train_and_evaluate_on_the_group_split():
    _, action, _ = _group()
    run = training_run_create(scenario=action, algorithm="ease", params={})
    status = training_run_execute(run_id=run.pk, device="cpu")
    assert status == RunStatus.SUCCEEDED, TrainingRun.objects.get(pk=run.pk).error
    assert TrainingRun.objects.get(pk=run.pk).metrics["ndcg@10"] > 0


def test_a_parent_run_must_be_usable_by_the_algorithm():
    group, action, _ = _group()
    parent = training_run_create(scenario=group, algorithm="popularity", params={})
    with pytest.raises(ValidationFailed) as queued:
        training_run_create(scenario=action, algorithm="ease", params={}, parent=parent)
    assert any("succeeded" in message for message in queued.value.detail["parent"])
    training_run_execute(run_id=parent.pk, device="cpu")
    parent.refresh_from_db()
    with pytest.raises(ValidationFailed) as cannot:
        training_run_create(scenario=action, algorithm="ease", params={}, parent=parent)
    assert "cannot start from a parent run" in cannot.value.detail["parent"][0]


def test_item_map_finds_shared_items_and_marks_new_ones():
    mapping = item_map(child_item_ids=np.array([3, 5, 9]), parent_item_ids=np.array([1, 3, 9]))
    assert mapping.tolist() == [1, -1, 2]
