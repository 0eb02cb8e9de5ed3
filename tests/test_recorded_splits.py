"""Every run records the split it was evaluated on, and a child reuses its parent's: no leak across a group.

Findings guarded: a group run split with its own seed or protocol while its members re-split with the group's
current settings (member test events in the parent's training data); a member run's seed recorded but not used;
nothing in the run record telling two splits apart.
"""

from datetime import timedelta

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.services import EventRow, interactions_ingest
from recsys_site.errors import ValidationFailed
from scenarios.services import scenario_create, scenario_update
from tests.factories import START, clustered_catalog
from training.groups import run_data_load
from training.interactions import HeldOut
from training.models import RunStatus, TrainingRun
from training.services import training_run_create, training_run_execute
from training.splits import pairs_digest, same_test_set, split_changes, split_key, split_label

pytestmark = pytest.mark.django_db

SASREC = {"embedding_size": 8, "layers": 1, "heads": 1, "max_length": 5, "batch_size": 64, "epochs": 1}
STUDENT = {"embedding_size": 4, "layers": 1, "max_length": 5, "epochs": 1}


def _group(split: str):
    clustered_catalog(users=45, items=30, per_user=10)
    group = scenario_create(data={"slug": "all", "name": "All", "split": split, "k_list": [5, 10]})
    member = {"parent": group, "k_list": [5, 10]}
    action = scenario_create(data={"slug": "action", "name": "Action", "include_categories": ["Action"], **member})
    return group, action


def _succeeded(run: TrainingRun) -> TrainingRun:
    status = training_run_execute(run_id=run.pk, device="cpu")
    run.refresh_from_db()
    assert status == RunStatus.SUCCEEDED, run.error
    return run


def _parent_refused(api, slug: str, run: dict) -> str:
    """What the API says of the parent when ``run`` is queued for scenario ``slug``; it must refuse the run."""
    response = api.post(f"/api/v1/scenarios/{slug}/runs/", run, format="json")
    assert response.status_code == 400, response.content
    return response.json()["errors"]["parent"][0]


def _pairs(held_out: HeldOut, user_ids: np.ndarray, item_ids: np.ndarray) -> set[tuple[int, int]]:
    users = np.repeat(np.arange(held_out.n_users), held_out.counts())
    return set(zip(user_ids[users].tolist(), item_ids[held_out.items].tolist(), strict=True))


def _training_pairs(run: TrainingRun) -> set[tuple[int, int]]:
    prepared = run_data_load(run=run)
    train = prepared.split.train
    return set(
        zip(
            prepared.training.user_ids[train.users].tolist(),
            prepared.training.item_ids[train.items].tolist(),
            strict=True,
        )
    )


def _test_pairs(run: TrainingRun) -> set[tuple[int, int]]:
    prepared = run_data_load(run=run)
    user_ids, item_ids = prepared.training.user_ids, prepared.training.item_ids
    assert run.split["test_digest"] == pairs_digest(held_out=prepared.split.test, user_ids=user_ids, item_ids=item_ids)
    return _pairs(prepared.split.test, user_ids, item_ids)


def test_a_run_records_its_split_with_digests_of_its_held_out_pairs():
    clustered_catalog(users=30, items=20, per_user=8)
    movies = scenario_create(data={"slug": "movies", "name": "Movies", "split": "random", "seed": 42})

    run = _succeeded(training_run_create(scenario=movies, algorithm="popularity", seed=7))

    split = run.split
    assert (split["protocol"], split["validation_share"], split["test_share"], split["seed"]) == ("random", 0.1, 0.1, 7)
    assert split["source"] == "movies" and split["snapshot"] == run.data_snapshot["sha256"]
    assert split["test_pairs"] > 0 and len(split["test_digest"]) == len(split["validation_digest"]) == 64
    assert split_label(split) == f"random 80/10/10 · seed 7 · data {split['snapshot'][:8]} · of movies"
    other = _succeeded(training_run_create(scenario=movies, algorithm="popularity", seed=8))
    assert not same_test_set(split, other.split) and split_changes(split, other.split) == ["seed 7 → 8"]
    again = _succeeded(training_run_create(scenario=movies, algorithm="ease", seed=7))
    assert same_test_set(split, again.split) and split_key(split) == split_key(again.split)


def test_a_member_run_records_its_groups_split_and_seed_not_its_own():
    group, action = _group("random")
    run = _succeeded(training_run_create(scenario=action, algorithm="popularity", seed=5))
    assert run.split["source"] == "all" and run.split["seed"] == group.seed != 5
    assert "of all" in split_label(run.split)


# --- no member test pair in the parent's training data, for every protocol and kind of child ---------------------


@pytest.mark.parametrize("split", ["random", "temporal", "leave_last_out"])
@pytest.mark.parametrize(("algorithm", "params"), [("sasrec", SASREC), ("distill", STUDENT)])
def test_a_member_child_reuses_its_group_parents_split_and_never_tests_on_its_training_pairs(split, algorithm, params):
    group, action = _group(split)
    # The group run is split with a seed the group does not have: the members used to re-split with the group's.
    parent = _succeeded(training_run_create(scenario=group, algorithm="sasrec", params=SASREC, seed=7))

    child = _succeeded(training_run_create(scenario=action, algorithm=algorithm, params=params, parent=parent))

    assert split_changes(parent.split, child.split) == []
    assert child.split["seed"] == (7 if split == "random" else None)
    member_test = _test_pairs(child)
    assert member_test and not member_test & _training_pairs(parent)


def test_a_fine_tune_in_the_same_scenario_reuses_its_parents_seed():
    _, action = _group("random")
    parent = _succeeded(training_run_create(scenario=action, algorithm="sasrec", params=SASREC))
    group_seed = parent.split["seed"]

    child = _succeeded(training_run_create(scenario=action, algorithm="sasrec", params=SASREC, parent=parent))

    assert child.split["seed"] == group_seed and same_test_set(parent.split, child.split)
    assert not _test_pairs(child) & _training_pairs(parent)


# --- a parent split another way is refused when the run is queued ------------------------------------------------


def test_a_parent_split_with_another_seed_is_refused_at_queue_time(api):
    clustered_catalog(users=30, items=20, per_user=8)
    movies = scenario_create(data={"slug": "movies", "name": "Movies", "split": "random", "algorithm": "sasrec"})
    parent = _succeeded(training_run_create(scenario=movies, params=SASREC, seed=7))

    message = _parent_refused(api, "movies", {"parent": parent.pk, "seed": 8, "hyperparameters": SASREC})

    assert f"run {parent.pk} was split random 80/10/10 · seed 7" in message
    assert "this run would be split random 80/10/10 · seed 8" in message and "seed 7 → 8" in message
    assert TrainingRun.objects.count() == 1


def test_a_parent_split_by_another_protocol_is_refused_at_queue_time(api):
    group, _ = _group("random")
    parent = _succeeded(training_run_create(scenario=group, algorithm="sasrec", params=SASREC))
    scenario_update(scenario=group, data={"split": "temporal"})

    message = _parent_refused(api, "action", {"algorithm": "sasrec", "parent": parent.pk, "hyperparameters": SASREC})

    assert "protocol random → temporal" in message and "this run would be split temporal 80/10/10" in message


def test_a_parent_split_on_other_data_is_refused_at_queue_time(api):
    group, _ = _group("leave_last_out")
    parent = _succeeded(training_run_create(scenario=group, algorithm="sasrec", params=SASREC))
    before = parent.split["snapshot"][:8]
    interactions_ingest(events=[EventRow(user="u0", item="i5", kind="rating", value=4.0, occurred_at=START)])

    message = _parent_refused(api, "action", {"algorithm": "sasrec", "parent": parent.pk, "hyperparameters": SASREC})

    assert f"data {before} → " in message and f"run {parent.pk} was split leave-last-out" in message


def test_a_child_whose_data_changed_after_it_was_queued_fails_rather_than_leak():
    group, action = _group("random")
    parent = _succeeded(training_run_create(scenario=group, algorithm="sasrec", params=SASREC))
    child = training_run_create(scenario=action, algorithm="sasrec", params=SASREC, parent=parent)
    late = START + timedelta(days=400)
    interactions_ingest(events=[EventRow(user="u1", item="i2", kind="rating", value=5.0, occurred_at=late)])

    assert training_run_execute(run_id=child.pk, device="cpu") == RunStatus.FAILED
    child.refresh_from_db()
    assert "data of all changed" in child.error and f"since run {parent.pk}" in child.error


def test_a_parent_without_a_recorded_split_is_refused():
    _, action = _group("random")
    parent = _succeeded(training_run_create(scenario=action, algorithm="sasrec", params=SASREC))
    TrainingRun.objects.filter(pk=parent.pk).update(split={})
    parent.refresh_from_db()

    with pytest.raises(ValidationFailed) as refused:
        training_run_create(scenario=action, algorithm="sasrec", params=SASREC, parent=parent)
    assert "recorded no split" in refused.value.detail["parent"][0]


def test_the_run_page_shows_the_split_and_its_test_digest(client, admin_user):
    group, action = _group("random")
    run = _succeeded(training_run_create(scenario=action, algorithm="popularity", seed=5))
    client.force_login(admin_user)

    page = client.get(f"/runs/{run.pk}/").content.decode()

    assert f"random 80/10/10 · seed {group.seed} · data {run.split['snapshot'][:8]} · of all" in page
    assert run.split["test_digest"] in page and "the split's is its group's" in page


def test_queueing_a_run_of_its_own_reads_no_event_and_its_worker_records_the_data():
    clustered_catalog(users=30, items=20, per_user=8)
    movies = scenario_create(data={"slug": "movies", "name": "Movies", "split": "random", "seed": 42})

    with CaptureQueriesContext(connection) as queued:
        run = training_run_create(scenario=movies, algorithm="popularity")

    event_reads = [query["sql"] for query in queued if "catalog_interaction" in query["sql"]]
    assert event_reads and all("COUNT(" in sql for sql in event_reads)  # the slice's size, counted by the database
    assert run.split["snapshot"] is None
    assert _succeeded(run).split["snapshot"] == run.data_snapshot["sha256"]
