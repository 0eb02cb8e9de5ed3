"""Blend weights are fitted on validation alone."""

import numpy as np
import pytest
import torch

from tests.test_algorithms_contract import fitted, planted_data
from training.evaluation.blending import blend_weights_fit, per_user_normalised, simplex_grid
from training.evaluation.ranking import top_k_items
from training.interactions import HeldOut, InteractionData


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
    toward_popularity, *_ = blend_weights_fit(scores, data, _held_out_top1(popularity, data))
    toward_knn, *_ = blend_weights_fit(scores, data, _held_out_top1(knn, data))

    assert toward_popularity[0] > toward_popularity[1]
    assert toward_knn[1] > toward_knn[0]
    assert sum(toward_knn) == pytest.approx(1.0)


USERS, ITEMS = 30, 12


def _favourites(n_users: int = USERS, n_items: int = ITEMS) -> tuple[InteractionData, HeldOut, np.ndarray]:
    """Every user has seen the last item; each user's validation item is one of the others."""
    users = np.arange(n_users)
    seen = np.full(n_users, n_items - 1)
    train = InteractionData(n_users, n_items, users, seen, np.ones(n_users, np.float32), users)
    held = users % (n_items - 1)
    return train, HeldOut.from_pairs(n_users, n_items, users, held), held


def _ranking(
    n_users: int, n_items: int, first: np.ndarray, second: np.ndarray, top: float | np.ndarray = 2.0
) -> torch.Tensor:
    """Scores that rank ``first[u]`` top (at ``top``) and ``second[u]`` next (at 1) for each user ``u``."""
    scores = torch.zeros(n_users, n_items)
    scores[np.arange(n_users), second] = 1.0
    scores[np.arange(n_users), first] = torch.as_tensor(top, dtype=torch.float32)
    return scores


def test_a_mix_no_better_on_validation_keeps_the_best_member():
    train, validation, held = _favourites()
    other = (held + 1) % (ITEMS - 1)
    best = _ranking(USERS, ITEMS, held, other)
    worse = best.clone()
    worse[0] = _ranking(1, ITEMS, other[:1], held[:1])[0]  # wrong for one user only

    fitted = blend_weights_fit([best, worse], train, validation)

    # Mixes up to 0.6/0.4 fix that one user too, but do no better than the best member alone.
    assert fitted.weights == fitted.best_weights == (1.0, 0.0) and fitted.ndcg == pytest.approx(1.0)


def test_a_mix_better_by_less_than_its_noise_keeps_the_best_member():
    train, validation, held = _favourites()
    other = (held + 1) % (ITEMS - 1)
    user = np.arange(USERS)
    # The best member misses users 0 and 1 and is barely right for user 5; the other is sure of users 0 and 1,
    # barely wrong for users 2 to 4 and sure and wrong for user 5. Mixed, they win two users and lose one.
    misses = user < 2
    best = _ranking(
        USERS, ITEMS, np.where(misses, other, held), np.where(misses, held, other), np.where(user == 5, 1.1, 2)
    )
    misses = (user >= 2) & (user <= 5)
    sure = (user < 2) | (user == 5)
    second = _ranking(
        USERS, ITEMS, np.where(misses, other, held), np.where(misses, held, other), np.where(sure, 3, 1.1)
    )

    fitted = blend_weights_fit([best, second], train, validation)

    assert fitted.best_weights == (0.5, 0.5) and fitted.best_ndcg > fitted.ndcg
    assert fitted.weights == (1.0, 0.0) and fitted.best_ndcg - fitted.ndcg < fitted.standard_error


def test_a_mix_better_by_more_than_its_noise_is_kept():
    train, validation, held = _favourites()
    other = (held + 1) % (ITEMS - 1)
    half = np.arange(USERS) < USERS // 2
    # Each member is sure and right for its half of the users, and barely wrong for the other half.
    first = _ranking(USERS, ITEMS, np.where(half, held, other), np.where(half, other, held), np.where(half, 3, 1.1))
    second = _ranking(USERS, ITEMS, np.where(half, other, held), np.where(half, held, other), np.where(half, 1.1, 3))

    fitted = blend_weights_fit([first, second], train, validation)

    assert 0 < fitted.weights[0] < 1 and fitted.ndcg == pytest.approx(1.0)


def test_normalisation_and_grid():
    rows = per_user_normalised(torch.tensor([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]))
    assert rows[0].tolist() == pytest.approx([-1.0, 0.0, 1.0]) and rows[1].tolist() == [0.0, 0.0, 0.0]
    assert simplex_grid(2, 0.5) == [(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)]
    assert len(simplex_grid(3, 0.1)) == 66
    with pytest.raises(ValueError):
        simplex_grid(1, 0.1)
