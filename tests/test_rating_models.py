"""The rating models (biased MF, neural MF) beyond the shared contract: what they predict and how they stop."""

import numpy as np
import pytest
import torch

from training.algorithms.base import EarlyStopping, Recommender
from training.algorithms.registry import algorithm_names, get_algorithm
from training.evaluation.rating import rating_errors
from training.evaluation.splits import split_random
from training.interactions import InteractionData

RATING_MODELS = [name for name in algorithm_names() if get_algorithm(name).predicts_ratings]
FAST = {
    "biased_mf": {"factors": 4, "regularization": 0.05, "iterations": 10},
    "neural_mf": {"embedding_size": 8, "hidden_size": 16, "learning_rate": 0.02, "epochs": 40, "batch_size": 64},
}


def low_rank_ratings(*, n_users: int = 80, n_items: int = 40, seed: int = 0) -> InteractionData:
    """Ratings 1–5 from a rank-2 preference plus user and item biases; each user rates half of the items."""
    rng = np.random.default_rng(seed)
    users_vectors, items_vectors = rng.normal(size=(n_users, 2)), rng.normal(size=(n_items, 2))
    true = 3.0 + 0.5 * rng.normal(size=(n_users, 1)) + 0.5 * rng.normal(size=n_items) + users_vectors @ items_vectors.T
    users, items = np.nonzero(rng.random((n_users, n_items)) < 0.5)
    ratings = np.clip(np.rint(true[users, items]), 1, 5).astype(np.float32)
    return InteractionData(n_users, n_items, users, items, ratings, np.arange(len(users), dtype=np.int64))


def fitted(name: str, data: InteractionData, **fit_kwargs) -> Recommender:
    model = get_algorithm(name)(FAST[name], seed=0)
    model.fit(data, **fit_kwargs)
    return model


def test_the_rating_models_are_registered():
    assert set(RATING_MODELS) == {"biased_mf", "neural_mf"}
    assert not get_algorithm("ials").predicts_ratings


def test_a_ranking_model_does_not_predict_ratings():
    with pytest.raises(NotImplementedError):
        get_algorithm("popularity")().predict_ratings([0], [0])


@pytest.mark.parametrize("name", RATING_MODELS)
def test_predictions_beat_the_global_mean_and_the_biases_alone(name):
    split = split_random(low_rank_ratings(), seed=1, ratios=(0.8, 0.0, 0.2))
    errors = rating_errors(fitted(name, split.train), split.test)
    global_mean = float(split.train.weights.mean())
    assert split.test.values is not None
    mean_rmse = float(np.sqrt(np.mean((split.test.values - global_mean) ** 2)))
    assert errors["rmse"] < 0.85 * mean_rmse
    assert errors["mae"] < errors["rmse"]


@pytest.mark.parametrize("name", RATING_MODELS)
def test_predictions_stay_in_the_training_range_and_match_the_scores(name):
    data = low_rank_ratings()
    model = fitted(name, data)
    users = np.repeat(np.arange(data.n_users), data.n_items)
    items = np.tile(np.arange(data.n_items), data.n_users)
    predicted = model.predict_ratings(users, items)
    assert predicted.dtype == torch.float32 and predicted.shape == (len(users),)
    assert float(predicted.min()) >= 1.0 and float(predicted.max()) <= 5.0
    scores = model.score(np.arange(data.n_users))
    assert torch.allclose(scores.reshape(-1), predicted, atol=1e-5)


@pytest.mark.parametrize("name", RATING_MODELS)
def test_a_pair_rated_twice_counts_once_with_its_mean(name):
    data = low_rank_ratings()
    twice = InteractionData(
        data.n_users,
        data.n_items,
        np.r_[data.users, data.users[:1], data.users[:1]],
        np.r_[data.items, data.items[:1], data.items[:1]],
        np.r_[data.weights, np.float32(data.weights[0] - 1), np.float32(data.weights[0] + 1)],
        np.arange(data.n_events + 2, dtype=np.int64),
    )
    users = np.arange(data.n_users)
    assert torch.allclose(fitted(name, twice).score(users), fitted(name, data).score(users), atol=1e-5)


@pytest.mark.parametrize("name", RATING_MODELS)
def test_bad_indexes_are_refused(name):
    model = fitted(name, low_rank_ratings())
    for users, items in (([0], [40]), ([80], [0]), ([0, 1], [0]), ([-1], [0])):
        with pytest.raises(ValueError):
            model.predict_ratings(users, items)


def test_early_stopping_on_an_error_keeps_the_lowest():
    data = low_rank_ratings()
    model = get_algorithm("biased_mf")(FAST["biased_mf"])
    model.fit(data)
    errors = iter([0.9, 0.8, 0.85, 0.95])
    stopper = EarlyStopping(
        model, data, None, patience=2, measure=lambda: {"rmse": next(errors)}, metric="rmse", lower_is_better=True
    )
    for _ in range(4):
        stopper.observe()
    assert stopper.best_epoch == 2 and stopper.should_stop
    stopper.restore_best()
    assert model.kept_epoch == 2


def test_biased_mf_learns_user_and_item_biases():
    # Every user rates every item; ratings are 3 + user offset + item offset exactly.
    user_offsets, item_offsets = np.array([-1.0, 0.0, 1.0]), np.array([-0.5, 0.5, 0.0, 0.25])
    users, items = np.divmod(np.arange(12), 4)
    ratings = (3.0 + user_offsets[users] + item_offsets[items]).astype(np.float32)
    data = InteractionData(3, 4, users, items, ratings, np.arange(12, dtype=np.int64))
    model = get_algorithm("biased_mf")({"factors": 1, "regularization": 1e-4, "iterations": 30})
    model.fit(data)
    assert torch.allclose(model.predict_ratings(users, items), torch.from_numpy(ratings), atol=0.02)
