import numpy as np

from training.algorithms.popularity import Popularity
from training.evaluation.slices import activity_bucket, activity_slices
from training.interactions import HeldOut, InteractionData


def test_buckets_by_training_events():
    assert activity_bucket(np.array([0, 5, 6, 50, 51])).tolist() == ["cold", "cold", "warm", "warm", "hot"]


def test_slices_split_users_and_items_by_activity():
    # Users 0-1 have 6 training events (warm), user 2 has 1 (cold). Item 0 is popular, item 5 is cold.
    users = np.array([0] * 6 + [1] * 6 + [2])
    items = np.array([0, 1, 2, 3, 6, 7, 0, 1, 2, 3, 6, 7, 0])
    train = InteractionData(
        n_users=3, n_items=8, users=users, items=items, weights=np.ones(13, dtype=np.float32), timestamps=np.arange(13)
    )
    model = Popularity()
    model.fit(train)
    # Held out: user 0 gets item 4, user 2 gets items 1 and 5. Every item has at most 3 events: all cold.
    test = HeldOut.from_pairs(3, 8, np.array([0, 2, 2]), np.array([4, 1, 5]))

    figures = activity_slices(model, train, test, k=2)

    assert figures["slice.users.cold.count"] == 1 and figures["slice.users.warm.count"] == 1
    # User 0 has every item but 4 and 5 → top-2 {4, 5}: item 4 found (warm user recall 1).
    # User 2 has item 0 → top-2 {1, 2} (2 events each): item 1 found, item 5 not (cold user recall 1/2).
    assert figures["slice.users.warm.recall@2"] == 1.0 and figures["slice.users.cold.recall@2"] == 0.5
    assert figures["slice.items.cold.count"] == 3 and figures["slice.items.cold.recall@2"] == 2 / 3
    assert figures["slice.items.hot.count"] == 0 and "slice.items.hot.recall@2" not in figures
