"""The data-set shaping that the benchmarks apply before they train."""

from benchmarks.datasets import filter_min_weight, reindex
from tests.factories import interactions


def test_min_weight_filter_keeps_events_at_or_above_the_threshold():
    data = interactions([0, 0, 1, 1], [0, 1, 0, 1], weights=[1, 3, 5, 2])
    kept = filter_min_weight(data, threshold=3)
    assert kept.items.tolist() == [1, 0] and kept.weights.tolist() == [3, 5]


def test_reindex_numbers_only_users_and_items_with_events():
    data = interactions([3, 3, 7], [5, 2, 5], n_users=10, n_items=8)
    renumbered, user_ids, item_ids = reindex(data)
    assert (renumbered.n_users, renumbered.n_items) == (2, 2)
    assert user_ids.tolist() == [3, 7] and item_ids.tolist() == [2, 5]
    assert renumbered.users.tolist() == [0, 0, 1] and renumbered.items.tolist() == [1, 0, 1]
