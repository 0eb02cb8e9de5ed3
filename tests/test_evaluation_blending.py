"""Blend weights are fitted on validation alone."""

import numpy as np
import pytest
import torch

from tests.test_algorithms_contract import fitted, planted_data
from training.evaluation.blending import blend_weights_fit, per_user_normalised, simplex_grid
from training.evaluation.ranking import top_k_items
from training.interactions import HeldOut


def _held_out_top1(model, data) -> HeldOut:
    """Each user's held-out item: the model's own best unseen item."""
    users = np.arange(data.n_users)
    best = top_k_items(model, data, users, k=1)[:, 0].numpy()
    return HeldOut.from_pairs(data.n_users, data.n_items, users, best)


def test_the_weights_follow_the_validation_set_and_nothing_else():
    data = planted_data()
    popularity, knn = fitted("popularity", data), fitted("item_knn", data)
    scores = [popularity.score(np.arange(data.n_users)), knn.score(np.arange(data.n_users))]

    # Validation made of each member's own favourites: the blend must give that member all the weight.
    toward_popularity, _ = blend_weights_fit(scores, data, _held_out_top1(popularity, data))
    toward_knn, _ = blend_weights_fit(scores, data, _held_out_top1(knn, data))

    assert toward_popularity[0] > toward_popularity[1]
    assert toward_knn[1] > toward_knn[0]
    assert sum(toward_knn) == pytest.approx(1.0)


def test_normalisation_and_grid():
    rows = per_user_normalised(torch.tensor([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]))
    assert rows[0].tolist() == pytest.approx([-1.0, 0.0, 1.0]) and rows[1].tolist() == [0.0, 0.0, 0.0]
    assert simplex_grid(2, 0.5) == [(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)]
    assert len(simplex_grid(3, 0.1)) == 66
    with pytest.raises(ValueError):
        simplex_grid(1, 0.1)
