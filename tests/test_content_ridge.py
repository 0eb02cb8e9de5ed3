"""The content ridge: its closed form, and what it does with items that have no events."""

import numpy as np
import pytest
import torch

from training.algorithms.content_ridge import content_ridge_fit, reduced_content, ridge_query_map
from training.algorithms.registry import get_algorithm
from training.interactions import InteractionData


def interactions(pairs: list[tuple[int, int]], *, n_users: int, n_items: int, features: np.ndarray) -> InteractionData:
    users, items = (np.array(column, dtype=np.int64) for column in zip(*pairs, strict=True))
    return InteractionData(
        n_users=n_users,
        n_items=n_items,
        users=users,
        items=items,
        weights=np.ones(len(users), dtype=np.float32),
        timestamps=np.arange(len(users), dtype=np.int64),
        item_features=features.astype(np.float32),
    )


def two_tastes(*, new_items: int = 2, popular_cluster: int = 0) -> InteractionData:
    """Items 0-3 lie near direction 0, items 4-7 near direction 1, and the last ``new_items`` (no events) alternate
    between them. Users 0-5 take to cluster 0, users 6-9 to cluster 1; ``popular_cluster``'s users take every item
    of their cluster, the others two each."""
    rng = np.random.default_rng(0)
    n_items = 8 + new_items
    cluster = np.array([0] * 4 + [1] * 4 + [index % 2 for index in range(new_items)])
    features = np.zeros((n_items, 6))
    features[np.arange(n_items), cluster] = 1.0
    features += rng.normal(0.0, 0.15, features.shape)
    pairs = []
    for user in range(10):
        taste = 0 if user < 6 else 1
        chosen = range(4) if taste == popular_cluster else rng.choice(4, size=2, replace=False)
        pairs += [(user, 4 * taste + int(item)) for item in chosen]
    return interactions(pairs, n_users=10, n_items=n_items, features=features)


def test_the_closed_form_solves_the_ridge_normal_equations():
    rng = np.random.default_rng(1)
    data = interactions(
        [(user, item) for user in range(7) for item in rng.choice(6, size=3, replace=False)],
        n_users=7,
        n_items=8,  # items 6 and 7 have no events: they stay out of the fit
        features=rng.normal(size=(8, 5)),
    )
    rank, l2 = 3, 0.05
    fitted = content_ridge_fit(torch.from_numpy(data.item_features).double(), data.csr(), rank=rank, l2=l2)

    # vec(W) from the normal equations (Bᵀ B ⊗ Aᵀ A + λ I) vec(W) = vec(Aᵀ X B), over the items with events.
    items = reduced_content(torch.from_numpy(data.item_features).double(), rank).numpy()
    matrix = data.csr().to_dense().double().numpy()
    users = np.hstack([matrix @ items, np.ones((7, 1))])
    seen = items[:6]
    penalty = l2 * np.linalg.eigvalsh(users.T @ users).max() * np.linalg.eigvalsh(seen.T @ seen).max()
    system = np.kron(seen.T @ seen, users.T @ users) + penalty * np.eye(users.shape[1] * rank)
    expected = np.linalg.solve(system, (users.T @ matrix[:, :6] @ seen).reshape(-1, order="F"))
    np.testing.assert_allclose(fitted.query_map.numpy(), expected.reshape(users.shape[1], rank, order="F"), atol=1e-9)


def test_a_map_fitted_on_some_users_is_the_map_of_the_data_without_the_others():
    data = two_tastes(new_items=2)
    items = reduced_content(torch.from_numpy(data.item_features).double(), 3)
    kept = torch.tensor([user % 3 != 0 for user in range(data.n_users)])
    # Users 0, 3, 6 and 9 left out; item 1 is only theirs in this draw or not: either way the fit must agree.
    rows = np.isin(data.users, np.flatnonzero(kept.numpy()))
    only_kept = interactions(
        list(zip(data.users[rows].tolist(), data.items[rows].tolist(), strict=True)),
        n_users=data.n_users,
        n_items=data.n_items,
        features=data.item_features,
    )
    partial = ridge_query_map(items, data.csr(), l2=0.01, users=kept)
    dropped_users = only_kept.csr().to_dense()[kept].to_sparse_csr()  # the left-out users gone, not zero rows
    torch.testing.assert_close(partial, ridge_query_map(items, dropped_users, l2=0.01))
    assert not torch.allclose(partial, ridge_query_map(items, data.csr(), l2=0.01))


def test_an_item_without_events_is_recommended_to_the_users_whose_taste_its_content_matches():
    data = two_tastes()
    model = get_algorithm("content_ridge")({"rank": 2})
    model.fit(data)

    scores = model.score(np.arange(10)).numpy()
    first_new, second_new = 8, 9  # near cluster 0 and cluster 1
    assert (scores[:6, first_new] > scores[:6, second_new]).all()
    assert (scores[6:, second_new] > scores[6:, first_new]).all()


def test_a_user_without_events_gets_the_content_that_popular_items_have():
    data = two_tastes(popular_cluster=1)
    grown = InteractionData(**{**data.__dict__, "n_users": data.n_users + 1})  # user 10 has no events
    model = get_algorithm("content_ridge")({"rank": 2})
    model.fit(grown)

    scores = model.score([10])[0].numpy()
    assert scores[9] > scores[8]  # the new item of the popular cluster (1) comes first


def test_the_penalty_is_relative_so_more_users_of_the_same_kind_rank_alike():
    data = two_tastes()
    doubled = InteractionData(
        n_users=2 * data.n_users,
        n_items=data.n_items,
        users=np.concatenate([data.users, data.users + data.n_users]),
        items=np.concatenate([data.items, data.items]),
        weights=np.ones(2 * data.n_events, dtype=np.float32),
        timestamps=np.arange(2 * data.n_events, dtype=np.int64),
        item_features=data.item_features,
    )
    single, double = get_algorithm("content_ridge")(), get_algorithm("content_ridge")()
    single.fit(data)
    double.fit(doubled)

    users = np.arange(data.n_users)
    np.testing.assert_array_equal(
        torch.argsort(single.score(users), dim=1).numpy(), torch.argsort(double.score(users), dim=1).numpy()
    )


def test_an_item_without_content_scores_zero():
    data = two_tastes()
    features = data.item_features.copy()
    features[9] = 0.0
    model = get_algorithm("content_ridge")()
    model.fit(InteractionData(**{**data.__dict__, "item_features": features}))

    assert (model.score(np.arange(10))[:, 9] == 0).all()


def test_event_weights_weigh_the_history_when_asked():
    data = two_tastes()
    weighted = InteractionData(**{**data.__dict__, "weights": np.where(data.items < 4, 1.0, 5.0).astype(np.float32)})
    plain, by_weight = get_algorithm("content_ridge")(), get_algorithm("content_ridge")({"use_event_weights": True})
    plain.fit(weighted)
    by_weight.fit(weighted)

    assert torch.equal(plain.item_content, by_weight.item_content)
    assert not torch.allclose(plain.user_queries[6:], by_weight.user_queries[6:])  # cluster-1 events weigh 5
    torch.testing.assert_close(plain.user_queries[:6], by_weight.user_queries[:6])  # weight 1: unchanged


def test_the_content_ridge_refuses_data_without_item_features():
    data = two_tastes()
    with pytest.raises(ValueError, match="content_ridge model needs item features"):
        get_algorithm("content_ridge")().fit(InteractionData(**{**data.__dict__, "item_features": None}))
