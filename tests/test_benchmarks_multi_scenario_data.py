"""The multi-scenario benchmark reads MovieLens through the catalog's parser, in time order, one film per scenario."""

from pathlib import Path

import numpy as np
import pytest

from benchmarks.multi_scenario.data import GROUPS, Dataset, dataset_load, item_groups
from training.algorithms.base import InteractionData

ML_100K = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ml-100k"


@pytest.mark.skipif(not ML_100K.exists(), reason="needs the shared MovieLens 100K folder")
def test_ml100k_is_every_rating_in_time_order_with_each_films_genres():
    dataset = dataset_load(name="ml-100k", folder=ML_100K)

    data = dataset.data
    assert (data.n_users, data.n_items, len(data.items)) == (943, 1682, 100_000)
    assert np.all(np.diff(data.timestamps) >= 0)
    assert dataset.titles[0] == "Toy Story (1995)"
    assert dataset.genres[0] == ["Animation", "Children's", "Comedy"]


def test_a_film_goes_to_the_first_group_its_genres_meet_and_the_rest_to_the_last():
    genres = [["Comedy", "Thriller"], ["Romance"], ["Drama"], []]
    data = InteractionData(
        n_users=1,
        n_items=4,
        users=np.zeros(4, dtype=np.int64),
        items=np.arange(4),
        weights=np.ones(4, dtype=np.float32),
        timestamps=np.arange(4),
    )

    groups = item_groups(Dataset("tiny", data, ["a", "b", "c", "d"], genres))

    assert [GROUPS[group][0] for group in groups] == ["action-thriller", "comedy-romance", "drama-other", "drama-other"]
