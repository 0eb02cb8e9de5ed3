"""The contract every registered algorithm fulfils, and a short smoke-train on planted structure.

Parametrised over ``model_names()`` (every algorithm but ``auto``, a choice among runs), so a new model is held to
it as soon as it registers.
"""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from training.algorithms.base import ARTIFACT_TENSORS, BudgetSpent, EpochReport, Recommender, TrainingCancelled
from training.algorithms.params import HyperparameterError
from training.algorithms.registry import get_algorithm, model_names
from training.algorithms.sequential import SequentialRecommender
from training.evaluation.metrics import ndcg_at_k, relevance_hits
from training.evaluation.ranking import mean_ndcg, top_k_items
from training.evaluation.rating import rating_errors
from training.evaluation.splits import Split, split_random
from training.interactions import HeldOut, InteractionData

DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]

# Settings that make the iterative models learn the tiny data in well under a second.
FAST_PARAMS: dict[str, dict] = {
    "bpr": {"embedding_size": 16, "learning_rate": 0.05, "epochs": 40, "batch_size": 64},
    "ials": {"factors": 8, "regularization": 1.0, "alpha": 10.0, "iterations": 8},
    "biased_mf": {"factors": 4, "regularization": 0.05, "iterations": 8},
    "neural_mf": {"embedding_size": 8, "hidden_size": 16, "learning_rate": 0.02, "epochs": 40, "batch_size": 32},
    **{
        name: {"embedding_size": 16, "max_length": 8, "batch_size": 16, "epochs": 30, "learning_rate": 0.01} | extra
        for name, extra in (("sasrec", {"layers": 1}), ("gru4rec", {"hidden_size": 32}), ("star", {"layers": 1}))
    },
    # The student keeps the epoch by validation here, as the contract checks; by default it keeps the one that agrees
    # most with its teacher (tests/test_transfer_and_distillation.py).
    "distill": {
        "embedding_size": 8,
        "max_length": 8,
        "batch_size": 16,
        "epochs": 30,
        "learning_rate": 0.01,
        "select_by": "validation",
    },
}

GROUP_SHARES = (0.4, 0.3, 0.2, 0.1)  # unequal groups, so popularity carries some signal too


def planted_data(*, n_users: int = 60, n_items: int = 24, seed: int = 0, shuffled: bool = False) -> InteractionData:
    """Users in four groups of unequal size; each has 5 of their group's 6 items and one random other item.

    A user's items come in ascending order, or in random order when ``shuffled`` (for sequence models,
    which would otherwise learn the ascending order as the rule and be judged on a random split).
    """
    rng = np.random.default_rng(seed)
    order_rng = np.random.default_rng(seed + 1)
    groups = rng.choice(len(GROUP_SHARES), size=n_users, p=GROUP_SHARES)
    users, items = [], []
    for user, group in enumerate(groups):
        group_items = np.arange(group, n_items, len(GROUP_SHARES))
        chosen = [*rng.choice(group_items, size=5, replace=False), rng.integers(n_items)]
        users += [user] * len(set(chosen))
        items += order_rng.permutation(sorted(set(chosen))).tolist() if shuffled else sorted(set(chosen))
    n_events = len(users)
    return InteractionData(
        n_users=n_users,
        n_items=n_items,
        users=np.array(users, dtype=np.int64),
        items=np.array(items, dtype=np.int64),
        weights=np.ones(n_events, dtype=np.float32),
        timestamps=np.arange(n_events, dtype=np.int64),
    )


def with_planted_ratings(data: InteractionData) -> InteractionData:
    """``data`` with ratings as weights, for models that learn ratings: 5 where the item is of the user's planted
    group (the group most of the user's items are in), 1 otherwise."""
    item_groups = data.items % len(GROUP_SHARES)
    counts = np.zeros((data.n_users, len(GROUP_SHARES)), dtype=np.int64)
    np.add.at(counts, (data.users, item_groups), 1)
    in_group = item_groups == counts.argmax(axis=1)[data.users]
    return dataclasses.replace(data, weights=np.where(in_group, 5.0, 1.0).astype(np.float32))


def planted_item_features(n_items: int, *, seed: int = 0) -> np.ndarray:
    """``(n_items, 8)`` float32 content features: each item near its planted group's direction."""
    rng = np.random.default_rng(seed)
    features = np.zeros((n_items, 8), dtype=np.float32)
    features[np.arange(n_items), np.arange(n_items) % len(GROUP_SHARES)] = 1.0
    return features + rng.normal(0.0, 0.1, features.shape).astype(np.float32)


def validation_split(name: str) -> Split:
    """The planted data (rated where ``name`` predicts ratings) split 60:20:20, to train ``name`` with validation."""
    data = planted_data()
    rated = with_planted_ratings(data) if get_algorithm(name).predicts_ratings else data
    return split_random(rated, seed=1, ratios=(0.6, 0.2, 0.2))


def fitted(name: str, data: InteractionData, *, device: str = "cpu", seed: int = 0, **fit_kwargs) -> Recommender:
    model = get_algorithm(name)(FAST_PARAMS.get(name, {}), device=device, seed=seed)
    if model.predicts_ratings:  # rating models learn the planted ratings
        data = with_planted_ratings(data)
    if model.uses_item_features and data.item_features is None:  # content models get planted features
        data = dataclasses.replace(data, item_features=planted_item_features(data.n_items))
    if getattr(model, "needs_members", False):  # a blend mixes two trained models of the same data
        model.attach_members([fitted("ease", data, seed=seed), fitted("item_knn", data, seed=seed)])
    if model.needs_teacher:  # a distilled student learns from a small SASRec trained on the same data
        model.attach_teacher(fitted("sasrec", data, device=device, seed=seed), np.arange(data.n_items))
    model.fit(data, **fit_kwargs)
    return model


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", model_names())
def test_scores_every_item_as_finite_float32_on_the_cpu(name, device):
    data = planted_data()
    model = fitted(name, data, device=device)
    scores = model.score(np.arange(data.n_users))
    assert scores.shape == (data.n_users, data.n_items)
    assert scores.dtype == torch.float32 and scores.device.type == "cpu"
    assert torch.isfinite(scores).all()
    assert model.score([3, 1]).shape == (2, data.n_items)


def assert_recommends_its_best_unseen_items(model: Recommender, data: InteractionData, *, k: int = 10) -> None:
    """Each user's top ``k`` holds no training item, and it is the ``k`` best of the others by the model's own
    scores: a model whose scores leave nothing else to rank (every other item at −inf or NaN) fails."""
    users = np.arange(data.n_users)
    recommended = top_k_items(model, data, users, k=k)
    training_pairs = set(zip(data.users.tolist(), data.items.tolist(), strict=True))
    assert not any((user, int(item)) in training_pairs for user in users for item in recommended[user])
    scores = model.score(users).double()
    seen = torch.zeros_like(scores, dtype=torch.bool)
    seen[torch.from_numpy(data.users), torch.from_numpy(data.items)] = True
    best_unseen = scores.masked_fill(seen, -torch.inf).topk(k, dim=1).values
    listed = scores.gather(1, recommended)
    assert torch.isfinite(listed).all()
    assert torch.allclose(listed, best_unseen, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", model_names())
def test_top_k_never_recommends_a_training_item(name):
    data = planted_data()
    assert_recommends_its_best_unseen_items(fitted(name, data), data)


class _SeenItemsOnly(Recommender):
    """A model that scores each user's training items and nothing else (−inf): ranked, it can only repeat them."""

    name = "seen_items_only"

    def fit(self, data, progress=None, *, validation=None):
        self.n_users, self.n_items = data.n_users, data.n_items
        self.seen = torch.full((data.n_users, data.n_items), -torch.inf)
        self.seen[torch.from_numpy(data.users), torch.from_numpy(data.items)] = 1.0

    def score(self, users):
        return self.seen[self.users_tensor(users)]

    def state_tensors(self):
        return {"seen": self.seen}

    def load_state_tensors(self, tensors):
        self.seen = tensors["seen"]


def test_the_training_item_check_fails_for_a_model_that_recommends_training_items():
    data = planted_data()
    model = _SeenItemsOnly()
    model.fit(data)
    with pytest.raises(AssertionError):
        assert_recommends_its_best_unseen_items(model, data)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", model_names())
def test_save_and_load_give_identical_scores(name, device, tmp_path: Path):
    data = planted_data()
    model = fitted(name, data, device=device)
    model.save(tmp_path / name)
    loaded = Recommender.load(tmp_path / name, device=device)
    assert type(loaded) is type(model) and loaded.hparams == model.hparams
    users = np.arange(data.n_users)
    assert torch.equal(loaded.score(users), model.score(users))


@pytest.mark.parametrize("name", model_names())
def test_same_seed_gives_identical_scores_on_the_cpu(name):
    data = planted_data()
    users = np.arange(data.n_users)
    first, second = fitted(name, data, seed=7), fitted(name, data, seed=7)
    assert torch.equal(first.score(users), second.score(users))


@pytest.mark.parametrize("name", model_names())
def test_invalid_hyperparameters_are_refused(name):
    algorithm = get_algorithm(name)
    with pytest.raises(HyperparameterError):
        algorithm({"no_such_hyperparameter": 1})
    for param in algorithm.params:
        bad_values = ["not a number"] if param.kind in (int, float) else [3.5]
        bad_values += [param.minimum - 1] if param.minimum is not None else []
        bad_values += [param.maximum + 1] if param.maximum is not None else []
        for value in bad_values:
            with pytest.raises(HyperparameterError) as error:
                algorithm({param.name: value})
            assert param.name in error.value.errors


@pytest.mark.parametrize("name", model_names())
def test_reports_progress_and_keeps_the_best_validation_state(name):
    split = validation_split(name)
    reports: list[EpochReport] = []
    model = fitted(name, split.train, progress=reports.append, validation=split.validation)
    assert_keeps_the_best_reported_state(model, reports, split)


def assert_keeps_the_best_reported_state(model: Recommender, reports: list[EpochReport], split) -> None:
    """The model scores validation as its best reported epoch did, and says which epoch that was."""
    reported = [report.validation["ndcg@10"] for report in reports if "ndcg@10" in report.validation]
    assert reports and reported
    iterative = reports[0].phase == "train"
    if model.predicts_ratings:  # rating models keep the epoch of the lowest validation RMSE
        errors = [report.validation["rmse"] for report in reports]
        assert rating_errors(model, split.validation)["rmse"] == pytest.approx(min(errors), abs=1e-6)
        assert model.kept_epoch == reports[int(np.argmin(errors))].step
        return
    assert mean_ndcg(model, split.train, split.validation) == pytest.approx(max(reported), abs=1e-9)
    assert model.kept_epoch == (reports[int(np.argmax(reported))].step if iterative else None)


@pytest.mark.parametrize("name", model_names())
def test_a_spent_budget_ends_an_iterative_fit_with_its_best_epoch_so_far(name):
    split = validation_split(name)
    reports: list[EpochReport] = []

    def three_epochs(report: EpochReport) -> None:
        reports.append(report)
        if len(reports) == 3:
            raise BudgetSpent("the time ran out")

    try:
        model = fitted(name, split.train, progress=three_epochs, validation=split.validation)
    except BudgetSpent:  # a model fitted in named phases, not epochs, gives up like a cancelled one
        assert reports[0].phase != "train"
        return
    if reports[0].phase != "train":
        assert len(reports) < 3  # fitted in one go: nothing to stop
        return
    assert len(reports) == 3 and reports[-1].total > 3
    assert_keeps_the_best_reported_state(model, reports, split)


@pytest.mark.parametrize("name", model_names())
def test_an_empty_validation_set_counts_as_none(name):
    data = planted_data()
    empty = HeldOut.from_pairs(data.n_users, data.n_items, np.zeros(0), np.zeros(0))
    reports: list[EpochReport] = []
    model = fitted(name, data, progress=reports.append, validation=empty)
    assert reports and all(report.validation == {} for report in reports)
    assert reports[-1].step == reports[-1].total  # nothing stopped it early
    assert model.kept_epoch == (reports[-1].step if reports[0].phase == "train" else None)  # the last epoch's


@pytest.mark.parametrize("name", model_names())
def test_a_cancelling_progress_callback_stops_training(name):
    def cancel(report: EpochReport) -> None:
        raise TrainingCancelled

    with pytest.raises(TrainingCancelled):
        fitted(name, planted_data(), progress=cancel)


@pytest.mark.parametrize("name", model_names())
def test_smoke_train_beats_random_and_personalised_models_beat_popularity(name):
    reads_order = issubclass(get_algorithm(name), SequentialRecommender)
    split = split_random(planted_data(n_users=80, seed=3, shuffled=reads_order), seed=3, ratios=(0.7, 0.0, 0.3))
    learned = mean_ndcg(fitted(name, split.train), split.train, split.test)
    assert learned > random_ndcg(split.train, split.test) + 0.05
    if name != "popularity":
        assert learned > mean_ndcg(fitted("popularity", split.train), split.train, split.test) + 0.1


def random_ndcg(train: InteractionData, test: HeldOut, *, draws: int = 200) -> float:
    """Mean NDCG@10 of uniformly random rankings of each user's unseen items."""
    rng = np.random.default_rng(0)
    seen = np.zeros((train.n_users, train.n_items), dtype=bool)
    seen[train.users, train.items] = True
    users = test.users_with_items()
    values = []
    for _ in range(draws):
        keys = np.where(seen[users], np.inf, rng.random((len(users), train.n_items)))
        recommended = np.argsort(keys, axis=1)[:, :10]
        hits, n_relevant = relevance_hits(recommended, [test.items_of(user) for user in users])
        values.append(ndcg_at_k(hits, n_relevant, 10).mean())
    return float(np.mean(values))


@pytest.mark.parametrize("name", model_names())
def test_forgotten_users_keep_nothing_of_their_own_and_others_score_as_before(name, tmp_path: Path):
    data = planted_data()
    model = fitted(name, data)
    before = model.score(np.arange(data.n_users))

    model.forget_users([2, 7])
    model.save(tmp_path / name)
    after = Recommender.load(tmp_path / name).score(np.arange(data.n_users))

    # Nothing personal is left of either, so they score alike; the rest are untouched.
    assert torch.equal(after[2], after[7])
    others = np.setdiff1d(np.arange(data.n_users), [2, 7])
    assert torch.allclose(after[others], before[others], atol=1e-5)
    for tensor_name in model.user_row_tensors():
        assert not model.state_tensors()[tensor_name][[2, 7]].any()


def test_forgetting_changes_what_a_personalised_model_holds():
    data = planted_data()
    model = fitted("ease", data)
    assert not torch.equal(model.score([2])[0], model.score([7])[0])  # the check above can tell them apart
    model.forget_users([2])
    assert not torch.equal(model.score([2])[0], model.score([7])[0])
    model.forget_users([7])
    assert torch.equal(model.score([2])[0], model.score([7])[0])


def test_ease_stores_its_matrix_as_float16_and_serves_what_it_evaluated(tmp_path):
    data = planted_data()
    model = fitted("ease", data)
    model.save(tmp_path)

    stored = load_file(str(tmp_path / ARTIFACT_TENSORS))["weights"]
    assert stored.dtype == torch.float16 and stored.shape == (data.n_items, data.n_items)
    assert torch.equal(Recommender.load(tmp_path).score([0, 3]), model.score([0, 3]))
