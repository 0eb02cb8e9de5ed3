"""Splits and filters of interaction data."""

import dataclasses

import numpy as np
import pytest

from tests.factories import interactions
from training.evaluation.splits import (
    history_before_test,
    split_leave_last_out,
    split_random,
    split_temporal,
)
from training.interactions import InteractionData


def many_events(*, n_users: int = 50, n_items: int = 200, per_user: int = 30, seed: int = 0) -> InteractionData:
    rng = np.random.default_rng(seed)
    items = np.concatenate([rng.choice(n_items, size=per_user, replace=False) for _ in range(n_users)])
    users = np.repeat(np.arange(n_users), per_user)
    order = rng.permutation(len(users))
    return interactions(users[order], items[order], timestamps=rng.integers(0, 10_000, len(users)), n_items=n_items)


def test_leave_last_out_puts_each_users_latest_event_in_test_and_the_one_before_in_validation():
    # User 0: items 0, 1, 2 at times 5, 1, 9 -> test 2, validation 0.
    # User 1: items 3, 4 at times 2, 2 (a tie: the later row wins) -> test 4, no validation.
    # User 2: one event -> stays in training.
    data = interactions([0, 0, 1, 0, 1, 2], [0, 1, 3, 2, 4, 5], timestamps=[5, 1, 2, 9, 2, 0])
    split = split_leave_last_out(data)
    assert split.test.items_of(0).tolist() == [2] and split.validation.items_of(0).tolist() == [0]
    assert split.test.items_of(1).tolist() == [4] and split.validation.items_of(1).tolist() == []
    assert split.test.items_of(2).tolist() == [] and split.train.items[split.train.users == 2].tolist() == [5]
    assert sorted(split.train_events.tolist()) == [1, 2, 5]
    assert sorted([*split.train_events, *split.validation_events, *split.test_events]) == list(range(6))


def test_random_split_follows_the_ratios_per_user_and_is_reproducible_by_seed():
    data = many_events()
    split = split_random(data, seed=4)
    # 30 events per user: floor(3.0) = 3 validation, 3 test, 24 training.
    assert (split.validation.counts() == 3).all() and (split.test.counts() == 3).all()
    assert (np.bincount(split.train.users, minlength=data.n_users) == 24).all()
    again, other = split_random(data, seed=4), split_random(data, seed=5)
    assert np.array_equal(split.test_events, again.test_events)
    assert not np.array_equal(split.test_events, other.test_events)


def test_random_split_rounds_small_users_like_recbole():
    # 5 events at 0.8/0.1/0.1: floor(0.5) = 0 each, but 0 < 0.5 < 1 gives test and validation one event each.
    # 2 events: test gets one (training keeps 2 > 1 before it), then training is down to 1 and validation gets none.
    data = interactions([0, 0, 0, 0, 0, 1, 1], [0, 1, 2, 3, 4, 0, 1])
    split = split_random(data, seed=0)
    assert split.test.counts().tolist() == [1, 1] and split.validation.counts().tolist() == [1, 0]


def test_temporal_split_respects_the_global_cut():
    data = many_events()
    split = split_temporal(data, ratios=(0.7, 0.15, 0.15))
    train_times = data.timestamps[split.train_events]
    validation_times, test_times = data.timestamps[split.validation_events], data.timestamps[split.test_events]
    assert train_times.max() <= validation_times.min() and validation_times.max() <= test_times.min()
    assert len(split.train_events) == int(data.n_events * 0.7)
    assert len(split.test_events) == data.n_events - int(data.n_events * 0.85)


def test_held_out_pairs_already_in_training_are_dropped():
    # User 0 sees item 1 at t=0 and again at t=2: the repeat in test could never be recommended.
    data = interactions([0, 0, 0], [1, 2, 1])
    split = split_leave_last_out(data)
    assert split.test.n_pairs == 0 and split.validation.items_of(0).tolist() == [2]


def test_test_pairs_also_in_validation_are_dropped_as_those_in_training_are():
    # User 0 watches item 2 at t=2 (validation) and again at t=3 (test): the test ranking masks validation items,
    # so the repeat could never be hit. User 1's test item 4 is new to them and stays.
    data = interactions([0, 0, 0, 0, 1, 1, 1], [5, 1, 2, 2, 1, 3, 4], timestamps=[0, 1, 2, 3, 0, 1, 2])
    split = split_leave_last_out(data)
    assert split.validation.items_of(0).tolist() == [2] and split.test.items_of(0).tolist() == []
    assert split.test.items_of(1).tolist() == [4] and split.test.users_with_items().tolist() == [1]
    assert 3 in split.test_events  # the event stays recorded in the test part; only its pair is not evaluated


def test_the_history_before_test_is_the_training_and_validation_events_in_time_order():
    data = interactions([0, 1, 0, 1, 0, 1, 0], [0, 1, 2, 3, 4, 5, 6], timestamps=[0, 1, 2, 3, 4, 5, 6])
    split = split_leave_last_out(data)
    history = history_before_test(data, split)
    assert history.items.tolist() == [0, 1, 2, 3, 4]  # user 0's test 6 and user 1's test 5 are not in it
    assert history.timestamps.tolist() == sorted(history.timestamps.tolist())
    assert (history.n_users, history.n_items) == (data.n_users, data.n_items)


@pytest.mark.parametrize("ratios", [(0.5, 0.5), (0.8, 0.3, 0.1), (0.0, 0.5, 0.5), (1.2, -0.1, -0.1)])
def test_bad_ratios_are_refused(ratios):
    with pytest.raises(ValueError, match="ratios"):
        split_random(many_events(), seed=0, ratios=ratios)


def test_a_split_keeps_the_item_features_and_the_domains_of_its_events():
    data = many_events(n_users=5, n_items=40, per_user=6)
    features = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    domains = data.items % 2
    split = split_leave_last_out(dataclasses.replace(data, item_features=features, domains=domains))
    assert split.train.item_features is features
    assert np.array_equal(split.train.domains, domains[split.train_events])
