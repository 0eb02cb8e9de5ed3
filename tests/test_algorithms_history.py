"""Scoring from a history given at request time (training.algorithms.history), for every registered algorithm."""

import dataclasses

import numpy as np
import pytest
import torch

from tests.test_algorithms_contract import (
    FAST_PARAMS,
    fitted,
    planted_data,
    planted_item_features,
    with_planted_ratings,
)
from training.algorithms.base import Recommender
from training.algorithms.history import History, fold_in, history_scores, new_item_scores
from training.algorithms.registry import get_algorithm, model_names
from training.interactions import InteractionData

# Fold-in solves the user factor against the final item factors; training's last user step saw the ones before.
FOLDED_IN = {"ials", "bpr", "biased_mf"}
# Its user embeddings are learned by gradient steps with the network: only its training users can be scored.
TRAINING_USERS_ONLY = {"neural_mf"}


def _training_history(data: InteractionData, user: int) -> History:
    mine = data.users == user
    return History(items=data.items[mine], weights=data.weights[mine])


@pytest.mark.parametrize("name", sorted(set(model_names()) - FOLDED_IN - TRAINING_USERS_ONLY))
def test_a_training_users_history_scores_as_the_model_scores_that_user(name):
    data = planted_data(shuffled=True)
    model = fitted(name, data)

    for user in (0, 7, 31):
        live = history_scores(model, _training_history(data, user))
        assert live is not None and live.shape == (data.n_items,) and live.dtype == torch.float32
        assert torch.allclose(live, model.score([user])[0], atol=1e-4), name


@pytest.mark.parametrize("name", sorted(FOLDED_IN))
def test_fold_in_ranks_a_training_users_items_as_the_model_does(name):
    data = planted_data()
    model = fitted(name, data)
    if model.predicts_ratings:  # it learned the planted ratings: the history carries them too
        data = with_planted_ratings(data)

    for user in (0, 7, 31):
        live = history_scores(model, _training_history(data, user))
        assert live is not None
        assert set(live.topk(6).indices.tolist()) & set(model.score([user])[0].topk(6).indices.tolist())
        correlation = np.corrcoef(live.numpy(), model.score([user])[0].numpy())[0, 1]
        assert correlation > 0.8, (name, correlation)


@pytest.mark.parametrize("name", sorted(TRAINING_USERS_ONLY))
def test_a_model_that_cannot_read_a_history_says_so(name):
    data = planted_data()
    assert history_scores(fitted(name, data), _training_history(data, 0)) is None


def test_biased_mf_folds_in_the_ratings_of_a_history():
    data = planted_data()
    model = fitted("biased_mf", data)
    items = np.array([0, 1, 2, 3])
    liked = history_scores(model, History(items=items, weights=np.full(4, 5, dtype=np.float32)))
    disliked = history_scores(model, History(items=items, weights=np.full(4, 1, dtype=np.float32)))
    empty = history_scores(model, History(items=np.zeros(0, dtype=np.int64), weights=np.zeros(0, dtype=np.float32)))

    assert liked is not None and disliked is not None and empty is not None
    assert liked.mean() > disliked.mean()  # the user's bias follows their ratings
    assert torch.isfinite(empty).all()


def test_fold_in_of_an_empty_history_is_the_zero_factor():
    model = fitted("ials", planted_data())
    empty = History(items=np.zeros(0, dtype=np.int64), weights=np.zeros(0, dtype=np.float32))
    assert torch.count_nonzero(fold_in(model, empty)) == 0


@pytest.mark.parametrize("name", ["ease", "item_knn", "sasrec", "gru4rec", "content", "content_ridge", "ials"])
def test_one_more_event_changes_the_scores(name):
    data = planted_data(shuffled=True)
    model = fitted(name, data)
    history = _training_history(data, 3)
    extra = int(np.setdiff1d(np.arange(data.n_items), history.items)[0])
    longer = History(items=np.append(history.items, extra), weights=np.append(history.weights, np.float32(1)))

    assert not torch.allclose(history_scores(model, history), history_scores(model, longer))


def test_the_content_ridge_keeps_its_map_through_save_and_load(tmp_path):
    data = planted_data()
    model = fitted("content_ridge", data)
    model.save(tmp_path)
    loaded = Recommender.load(tmp_path)
    history = _training_history(data, 5)
    assert torch.allclose(history_scores(model, history), history_scores(loaded, history))


@pytest.mark.parametrize("name", ["content", "content_ridge"])
def test_an_item_added_after_training_scores_as_an_item_with_its_content(name):
    data = dataclasses.replace(planted_data(), item_features=planted_item_features(24))
    model = fitted(name, data)
    history = _training_history(data, 2)
    features = data.item_features[[4, 9]]  # two new items with the content of items 4 and 9

    scores = new_item_scores(model, history, features)

    assert scores is not None and torch.allclose(scores, history_scores(model, history)[[4, 9]], atol=1e-5)


def _without_item_23(planted: InteractionData) -> InteractionData:
    """``planted`` with item 23's events left out (a hybrid ranks it by its content alone) and planted features."""
    kept = planted.items != 23
    return dataclasses.replace(
        planted,
        users=planted.users[kept],
        items=planted.items[kept],
        weights=planted.weights[kept],
        timestamps=planted.timestamps[kept],
        item_features=planted_item_features(24),
    )


CONTENT_HYBRIDS = [
    ("sasrec", {"content": "side", "content_rank": 0}),
    ("sasrec", {"content": "side", "content_rank": 4}),
    ("sasrec", {"content": "prior", "prior_rank": 4}),
    ("gru4rec", {"content": "prior", "prior_rank": 0}),
    ("star", {"content": "side", "content_rank": 4}),
    ("star", {"content": "prior", "prior_rank": 4}),
]


@pytest.mark.parametrize(("name", "content"), CONTENT_HYBRIDS)
def test_a_content_hybrid_scores_a_new_item_as_an_item_without_events_of_the_same_content(name, content):
    data = _without_item_23(planted_data(shuffled=True))
    model = get_algorithm(name)(FAST_PARAMS[name] | content)
    model.fit(data)
    history = _training_history(data, 2)
    domain = {"domain": 0} if name == "star" else {}

    scores = new_item_scores(model, history, data.item_features[[23, 4]], **domain)

    assert scores is not None
    assert torch.allclose(scores[:1], history_scores(model, history, **domain)[[23]], atol=1e-4)
    assert abs(float(scores[0] - scores[1])) > 1e-4  # other content, another score


def test_a_content_priors_placement_of_new_items_survives_save_and_load(tmp_path):
    data = _without_item_23(planted_data(shuffled=True))
    model = get_algorithm("sasrec")(FAST_PARAMS["sasrec"] | {"content": "prior", "prior_rank": 4})
    model.fit(data)
    model.save(tmp_path)
    loaded = Recommender.load(tmp_path)
    history = _training_history(data, 5)

    expected = new_item_scores(model, history, data.item_features[[23]])
    assert expected is not None
    assert torch.allclose(new_item_scores(loaded, history, data.item_features[[23]]), expected, atol=1e-5)


def test_a_content_prior_saved_before_it_kept_its_reduction_loads_and_leaves_new_items_out():
    data = _without_item_23(planted_data(shuffled=True))
    model = get_algorithm("sasrec")(FAST_PARAMS["sasrec"] | {"content": "prior", "prior_rank": 4})
    model.fit(data)
    tensors = {name: value for name, value in model.state_tensors().items() if "content_" not in name}
    older = get_algorithm("sasrec")(model.hparams)
    older.n_users, older.n_items = model.n_users, model.n_items

    older.load_state_tensors(tensors)

    assert torch.allclose(older.score([0, 5]), model.score([0, 5]), atol=1e-5)
    assert new_item_scores(older, _training_history(data, 5), data.item_features[[23]]) is None


@pytest.mark.parametrize("name", ["ease", "sasrec", "ials", "popularity", "distill"])
def test_models_without_content_cannot_score_new_items(name):
    model = fitted(name, planted_data(shuffled=True))
    assert new_item_scores(model, None, np.ones((2, 8), dtype=np.float32)) is None


def test_an_out_of_range_item_is_refused():
    model = fitted("ease", planted_data())
    with pytest.raises(ValueError, match="out of range"):
        history_scores(model, History(items=np.array([99]), weights=np.ones(1, dtype=np.float32)))


def test_ease_scores_a_history_from_its_items_rows_alone():
    # Serving cost grows with the history, not the catalogue: a row of the item × item matrix outside the history
    # is never read (were it multiplied by a zero, its NaN would spread to every score).
    data = planted_data(shuffled=True)
    model = fitted("ease", data)
    history = _training_history(data, 3)
    twice = history.items[:2]
    repeated = History(items=np.append(history.items, twice), weights=np.append(history.weights, np.float32([2, 2])))
    expected = history_scores(model, history)
    model.weights[torch.from_numpy(np.setdiff1d(np.arange(data.n_items), history.items))] = torch.nan

    assert torch.allclose(history_scores(model, history), expected, atol=1e-5)
    assert torch.allclose(history_scores(model, repeated), expected, atol=1e-5)  # an item counts once
