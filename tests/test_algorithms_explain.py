"""Similar items and per-item explanations of the algorithms that offer them."""

import numpy as np
import pytest
import torch

from tests.factories import interactions
from training.algorithms.registry import algorithm_names, get_algorithm
from training.interactions import InteractionData


def _data() -> InteractionData:
    rng = np.random.default_rng(0)
    users, items = [], []
    for user in range(30):
        group = user % 3
        for item in rng.choice(np.arange(group * 6, group * 6 + 6), size=4, replace=False):
            users.append(user)
            items.append(int(item))
    return interactions(users, items, n_users=30, n_items=18)


# Enough training for the tiny planted data; other algorithms use their defaults.
PARAMS = {"bpr": {"epochs": 60, "learning_rate": 0.05}}


def _fitted(name: str):
    model = get_algorithm(name)(PARAMS.get(name, {}))
    model.fit(_data())
    return model


@pytest.mark.parametrize("name", [n for n in algorithm_names() if get_algorithm(n).explainable])
def test_explanations_add_up_to_the_score(name):
    model = _fitted(name)
    data = _data()
    user = 4
    history = np.unique(data.items[data.users == user])
    items = np.arange(data.n_items)

    contributions = model.explain(history, items)

    assert contributions.shape == (data.n_items, len(history))
    np.testing.assert_allclose(contributions.sum(axis=1), model.score([user])[0].numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["item_knn", "ease", "bpr", "ials"])
def test_similar_items_prefer_the_same_group(name):
    model = _fitted(name)
    similarity = model.similar_items([0])
    assert similarity.shape == (1, 18) and torch.isfinite(similarity).all()
    similarity[0, 0] = -torch.inf
    top = torch.topk(similarity[0], 3).indices.tolist()
    assert sum(item < 6 for item in top) >= 2  # item 0 belongs to the first group (items 0-5)


def test_popularity_has_no_item_similarity():
    with pytest.raises(NotImplementedError, match="similarity"):
        _fitted("popularity").similar_items([0])
