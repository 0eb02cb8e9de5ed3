"""Sequential recommenders (SASRec, GRU4Rec): training windows, learning a planted order, scoring, content."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from training.algorithms.base import Recommender
from training.algorithms.content_ridge import reduced_content, ridge_query_map
from training.algorithms.registry import get_algorithm
from training.algorithms.sequential import ContentPrior, UserSequences, training_windows
from training.evaluation.ranking import evaluate, scorer_for_test
from training.evaluation.splits import split_leave_last_out
from training.interactions import InteractionData

SMALL = {"embedding_size": 16, "max_length": 10, "batch_size": 16, "learning_rate": 0.01, "dropout": 0.0}
SMALL_PARAMS = {"sasrec": SMALL | {"layers": 1}, "gru4rec": SMALL | {"hidden_size": 32}}


def events(users: list[int], items: list[int], *, n_users: int, n_items: int) -> InteractionData:
    """Events in the given order (that order is time)."""
    return InteractionData(
        n_users=n_users,
        n_items=n_items,
        users=np.asarray(users, dtype=np.int64),
        items=np.asarray(items, dtype=np.int64),
        weights=np.ones(len(users), dtype=np.float32),
        timestamps=np.arange(len(users), dtype=np.int64),
    )


def successor_data(*, n_users: int = 80, n_items: int = 20, length: int = 8, seed: int = 0) -> InteractionData:
    """Each user walks item i → i + 1 (mod n_items) from a random start."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(n_items, size=n_users)
    items = (starts[:, None] + np.arange(length)[None, :]) % n_items
    return events(np.repeat(np.arange(n_users), length).tolist(), items.ravel().tolist(), n_users=n_users,
                  n_items=n_items)  # fmt: skip


def test_windows_train_every_event_but_each_users_first_exactly_once_after_its_predecessors():
    lengths = [1, 2, 5, 9, 23]
    users = np.repeat(np.arange(len(lengths)), lengths)
    rng = np.random.default_rng(0)
    data = events(users.tolist(), rng.integers(30, size=len(users)).tolist(), n_users=len(lengths), n_items=30)
    for max_length, stride in ((4, 2), (5, 5), (6, 1), (50, 25)):
        sequences = UserSequences.from_data(data)
        inputs, targets, starts = training_windows(sequences, max_length, stride)
        for row, start in enumerate(starts):  # each window's inputs are the items from its start on
            window = inputs[row][inputs[row] > 0] - 1
            assert np.array_equal(window, sequences.items[start : start + len(window)])
        trained = targets[targets >= 0]
        first_events = np.cumsum(lengths) - lengths
        assert sorted(trained) == sorted(set(range(len(users))) - set(first_events))
        rows, columns = np.nonzero(targets >= 0)
        for row, column in zip(rows, columns, strict=True):
            target = targets[row, column]
            preceding = data.items[first_events[data.users[target]] : target]  # the user's events before it
            window = inputs[row, : column + 1] - 1
            assert np.array_equal(window, preceding[-len(window) :])


@pytest.mark.parametrize("name", ["sasrec", "gru4rec"])
def test_learns_a_planted_successor_rule_and_ranks_the_next_item_first(name):
    data = successor_data()
    model = get_algorithm(name)(SMALL_PARAMS[name] | {"epochs": 25}, seed=0)
    model.fit(data)
    last = data.items.reshape(data.n_users, -1)[:, -1]
    top = model.score(np.arange(data.n_users)).argmax(1).numpy()
    assert np.mean(top == (last + 1) % data.n_items) >= 0.9


@pytest.mark.parametrize("name", ["sasrec", "gru4rec"])
def test_score_equals_score_sequences_of_the_training_sequences(name):
    data = successor_data(length=12)  # longer than max_length: only the last 10 items are read
    model = get_algorithm(name)(SMALL_PARAMS[name] | {"epochs": 2}, seed=0)
    model.fit(data)
    histories = [data.items[data.users == user] for user in range(data.n_users)]
    assert torch.allclose(model.score(np.arange(data.n_users)), model.score_sequences(histories), atol=1e-5)
    assert model.score_sequences([[]]).shape == (1, data.n_items)  # a history with nothing in it yet


@pytest.mark.parametrize("name", ["sasrec", "gru4rec"])
def test_histories_of_any_lengths_score_as_each_alone_and_the_padding_is_not_computed(name):
    data = successor_data(length=12)
    model = get_algorithm(name)(SMALL_PARAMS[name] | {"epochs": 2}, seed=0)
    model.fit(data)
    histories = [[3], [4, 5, 6], list(range(12)), [7, 8]]
    together = model.score_sequences(histories)
    for row, history in enumerate(histories):
        assert torch.allclose(together[row], model.score_sequences([history])[0], atol=1e-5)
    widths = []
    model.network.encoder.register_forward_pre_hook(lambda module, args: widths.append(args[0].shape[1]))
    model.score_sequences([[1, 2, 3]])
    model.score_sequences(histories[:2])
    assert widths == [3, 3]  # max_length is 10: the padding after the longest history is left out


def test_scoring_computes_the_item_table_once_until_a_parameter_changes():
    data = successor_data()
    model = get_algorithm("sasrec")(SMALL_PARAMS["sasrec"] | {"epochs": 1}, seed=0)
    model.fit(data)
    computed = []
    weight = model.network.items.weight
    model.network.items.weight = lambda *args: computed.append(1) or weight(*args)
    before = model.score_sequences([[1, 2]])
    model.score_sequences([[3]])
    model.score(np.arange(3))
    assert len(computed) == 1
    with torch.no_grad():
        model.network.items.table[2:] += 0.5  # in place, as an optimiser step or a load changes it
    after = model.score_sequences([[1, 2]])
    assert len(computed) == 2 and not torch.allclose(before, after)
    with torch.enable_grad():
        model.network.scoring_table()  # training reads the table afresh, with its gradient
    assert len(computed) == 3


@pytest.mark.parametrize("name", ["sasrec", "gru4rec", "star"])
def test_test_predictions_read_the_training_history_plus_the_validation_events(name):
    # Under leave-last-out the validation event is the one just before the test event: a model that learned
    # "i is followed by i + 1" must predict the test item from it, not from the training history alone.
    data = successor_data(length=6)
    split = split_leave_last_out(data)
    train = split.train if name != "star" else dataclasses.replace(split.train, domains=np.zeros(
        split.train.n_events, dtype=np.int64))  # fmt: skip
    model = get_algorithm(name)(SMALL_PARAMS.get(name, SMALL | {"layers": 1}) | {"epochs": 25}, seed=0)
    model.fit(train)
    tested = scorer_for_test(model, data, split)
    histories = [data.items[data.users == user][:-1] for user in range(data.n_users)]  # all but the test event
    users = np.arange(data.n_users)
    assert torch.allclose(tested.score(users), model.score_sequences(histories), atol=1e-5)
    assert not torch.allclose(tested.score(users), model.score(users), atol=1e-3)
    assert evaluate(tested, split.train, split.test, ks=[1], exclude=split.validation)["metrics"]["hit@1"] >= 0.9


def clustered_data(*, seed: int = 0):
    """Four clusters of 10 warm and 5 cold items (no events); users stay in one cluster's warm items.

    Features (8-d) carry the cluster. Returns the data and each user's cluster.
    """
    rng = np.random.default_rng(seed)
    n_clusters, warm, cold, n_users = 4, 10, 5, 160
    per_cluster = warm + cold
    n_items = n_clusters * per_cluster
    clusters = rng.integers(n_clusters, size=n_users)
    users, items = [], []
    for user, cluster in enumerate(clusters):
        chosen = cluster * per_cluster + rng.choice(warm, size=6, replace=False)
        users += [user] * len(chosen)
        items += chosen.tolist()
    features = np.zeros((n_items, 8), dtype=np.float32)
    features[np.arange(n_items), np.arange(n_items) // per_cluster] = 1.0
    features += rng.normal(0.0, 0.1, features.shape).astype(np.float32)
    data = events(users, items, n_users=n_users, n_items=n_items)
    return dataclasses.replace(data, item_features=features), clusters, per_cluster, warm


def cold_items_from_own_cluster(content: str, **params) -> float:
    """Share of each user's 5 best-scored cold items that are from the user's cluster (chance: 1/4)."""
    data, clusters, per_cluster, warm = clustered_data()
    model = get_algorithm("sasrec")(SMALL_PARAMS["sasrec"] | {"epochs": 15, "content": content, **params}, seed=0)
    model.fit(data)
    cold = np.array([item for item in range(data.n_items) if item % per_cluster >= warm])
    best = cold[model.score(np.arange(data.n_users))[:, cold].topk(5, dim=1).indices.numpy()]
    return float(np.mean(best // per_cluster == clusters[:, None]))


def test_side_content_places_items_without_events_near_their_cluster_and_none_cannot():
    with_content, without = cold_items_from_own_cluster("side"), cold_items_from_own_cluster("none")
    assert with_content >= 0.8
    assert without <= 0.5
    assert with_content > without + 0.3


def test_side_content_items_without_events_are_their_content_alone():
    data, _, per_cluster, warm = clustered_data()
    model = get_algorithm("sasrec")(SMALL_PARAMS["sasrec"] | {"epochs": 3, "content": "side"}, seed=0)
    model.fit(data)
    items = model.network.items
    cold = torch.tensor([item % per_cluster >= warm for item in range(data.n_items)])
    assert torch.count_nonzero(items.table[1:][cold]) == 0
    assert torch.count_nonzero(items.table[1:][~cold]) > 0
    content = items.features[1:] @ items.projection.T
    assert torch.allclose(model.item_vectors()[cold], content[cold])


def test_side_content_learns_a_bias_toward_items_whose_content_is_popular():
    rng = np.random.default_rng(0)
    n_clusters, per_cluster, n_users = 4, 10, 120
    n_items = n_clusters * per_cluster
    cold = np.arange(n_items) % per_cluster >= 7
    popularity = np.where(np.arange(n_items) // per_cluster == 0, 8.0, 1.0) * ~cold  # cluster 0 is popular
    users, items = [], []
    for user in range(n_users):
        chosen = rng.choice(n_items, size=8, replace=False, p=popularity / popularity.sum())
        users += [user] * len(chosen)
        items += chosen.tolist()
    features = np.eye(n_clusters, dtype=np.float32)[np.arange(n_items) // per_cluster]
    features += rng.normal(0.0, 0.05, features.shape).astype(np.float32)
    data = dataclasses.replace(events(users, items, n_users=n_users, n_items=n_items), item_features=features)
    model = get_algorithm("sasrec")(SMALL_PARAMS["sasrec"] | {"epochs": 10, "content": "side"}, seed=0)
    model.fit(data)
    bias = model.network.items.bias().detach()
    popular_cold, other_cold = bias[:per_cluster][cold[:per_cluster]], bias[per_cluster:][cold[per_cluster:]]
    assert popular_cold.min() > other_cold.max()


def test_content_rank_reads_the_features_top_principal_directions_and_a_fine_tuned_run_keeps_them(tmp_path):
    data, _, _, _ = clustered_data()
    params = SMALL_PARAMS["sasrec"] | {"epochs": 2, "content": "side", "content_rank": 3}
    model = get_algorithm("sasrec")(params, seed=0)
    model.fit(data)
    items = model.network.items
    assert items.projection.shape == (16, 3) and items.features.shape == (data.n_items + 1, 3)
    unit = torch.nn.functional.normalize(torch.from_numpy(data.item_features).double(), dim=1)
    centred = unit - unit.mean(0)
    values = torch.linalg.svdvals(centred)
    basis = items.content_basis.double()
    assert torch.allclose(basis.T @ basis, torch.eye(3, dtype=torch.float64), atol=1e-5)
    # Same subspace as the top three principal directions: projecting onto it keeps their variance.
    assert torch.allclose((centred @ basis).square().sum(), values[:3].square().sum(), rtol=1e-4)
    expected = torch.nn.functional.normalize(centred @ basis, dim=1).float()
    assert torch.allclose(items.features[1:], expected, atol=1e-5)

    child = get_algorithm("sasrec")(params | {"content_rank": 0}, seed=1)
    child.initialize_from(model, np.arange(data.n_items))
    child.fit(data)
    assert child.hparams["content_rank"] == 3  # the network's shape comes from the parent
    assert torch.equal(child.network.items.content_basis, items.content_basis)

    model.save(tmp_path)
    metadata = json.loads((tmp_path / "metadata.json").read_text())
    del metadata["params"]["content_rank"]  # the network's shape is in its tensors, whatever the params say
    (tmp_path / "metadata.json").write_text(json.dumps(metadata))
    loaded = Recommender.load(tmp_path)
    assert loaded.hparams["content_rank"] == 3
    assert torch.equal(loaded.score(np.arange(data.n_users)), model.score(np.arange(data.n_users)))


@pytest.mark.parametrize("name", ["sasrec", "gru4rec", "star"])
def test_every_training_loss_adds_the_weighted_next_item_loss_of_the_items_content_alone(name):
    data, _, _, _ = clustered_data()
    model = get_algorithm(name)(SMALL_PARAMS.get(name, SMALL | {"layers": 1}) | {"epochs": 1, "content": "side"})
    model.fit(data)
    network = model.network
    network.eval()  # no dropout: the same batch gives the same states
    batch = model._windows(UserSequences.from_data(data)).rows(slice(0, 12))
    inputs, target_events = batch.inputs, batch.target_events
    trained = target_events >= 0
    domain = 0 if name == "star" else None
    with torch.no_grad():
        hidden = network.hidden(inputs, network.items.weight(), domain)[trained]
        targets = model._items_by_event[target_events[trained]]
        content_only = torch.nn.functional.cross_entropy(
            network.logits(hidden, network.items.content_weight(), domain) + model._unseen_logits, targets
        )
        losses = {}
        for weight in (0.0, 0.5):
            model.hparams["content_loss"] = weight
            losses[weight], _ = model._batch_loss(batch)
    assert torch.allclose(losses[0.5] - losses[0.0], 0.5 * content_only, atol=1e-5)


@pytest.mark.parametrize(
    "params", [{"content_loss": 1.0}, {"content_rank": 4}, {"content_rank": 4, "content_loss": 1.0}]
)
def test_content_loss_and_rank_keep_items_without_events_near_their_cluster(params):
    assert cold_items_from_own_cluster("side", **params) >= 0.8


def fitted_with_prior(name: str, data: InteractionData, **params) -> Recommender:
    """``name`` with content prior on ``data``."""
    model = get_algorithm(name)(SMALL_PARAMS.get(name, SMALL | {"layers": 1}) | {"content": "prior", **params})
    model.fit(data)
    return model


@pytest.mark.parametrize("name", ["sasrec", "gru4rec", "star"])
def test_content_prior_ranks_items_without_events_exactly_as_the_content_ridge_does(name):
    data, _, per_cluster, warm = clustered_data()
    model = fitted_with_prior(name, data, epochs=3, prior_rank=4, max_length=4)  # 6 items a user: the prior reads all
    ridge = get_algorithm("content_ridge")({"rank": 4})
    ridge.fit(data)

    cold = torch.tensor([item % per_cluster >= warm for item in range(data.n_items)])
    network = model.network
    assert torch.count_nonzero(network.items.table[1:][cold]) == 0  # STAR's auxiliary item terms too
    gain = network.prior.log_gain.detach().exp()
    users = np.arange(data.n_users)
    scores = model.score(users)
    torch.testing.assert_close(scores[:, cold], gain * ridge.score(users)[:, cold], atol=1e-5, rtol=1e-5)
    histories = [data.items[data.users == user] for user in users]
    torch.testing.assert_close(model.score_sequences(histories), scores, atol=1e-5, rtol=1e-5)


def test_content_prior_recommends_items_without_events_from_the_users_cluster():
    assert cold_items_from_own_cluster("prior", prior_rank=4) >= 0.9


def test_content_prior_training_windows_read_the_ridge_fitted_without_their_user():
    data, _, _, _ = clustered_data()
    model = get_algorithm("sasrec")(
        SMALL_PARAMS["sasrec"] | {"content": "prior", "prior_rank": 4, "prior_folds": 3, "max_length": 4, "epochs": 1}
    )
    features = torch.from_numpy(data.item_features)
    with model._seeded():
        model._prepare(data, features)
    windows = model._windows(UserSequences.from_data(data))
    prior, user_folds = model.network.prior, model._user_folds
    assert torch.equal(torch.bincount(user_folds), torch.tensor([54, 53, 53]))  # 160 users in 3 even folds

    items = reduced_content(features, 4)
    for fold in range(3):
        expected = ridge_query_map(items, data.csr(), l2=model.hparams["prior_l2"], users=user_folds != fold)
        torch.testing.assert_close(prior.fold_maps[fold], expected)
    first_targets = windows.target_events.clamp(min=0).max(1).values
    window_users = torch.from_numpy(data.users)[first_targets]
    assert torch.equal(windows.folds, user_folds[window_users])

    profiles = prior.items[windows.inputs].cumsum(1) + windows.offsets[:, None, :]
    maps = prior.fold_maps[windows.folds]
    expected = torch.einsum("blr,brs->bls", profiles, maps[:, :-1]) + maps[:, -1:, :]
    torch.testing.assert_close(prior.queries(windows.inputs, windows.offsets, windows.folds), expected)
    full = profiles @ prior.query_map[:-1] + prior.query_map[-1]
    torch.testing.assert_close(prior.queries(windows.inputs, windows.offsets), full)  # scoring: every user's fit
    assert not torch.allclose(expected, full)

    model.fit(data)
    assert model.network.prior.fold_maps is None and model._user_folds is None
    assert not any("fold_maps" in name for name in model.state_tensors())


@pytest.mark.parametrize("name", ["sasrec", "star"])
def test_every_training_loss_reads_the_cross_fitted_prior_and_scoring_the_full_one(name, monkeypatch):
    calls: list[tuple[bool, bool]] = []  # (training, fold maps read)
    queries = ContentPrior.queries

    def recording(self, tokens, offsets=None, folds=None):
        calls.append((self.training, folds is not None and self.fold_maps is not None))
        return queries(self, tokens, offsets, folds)

    monkeypatch.setattr(ContentPrior, "queries", recording)
    data, _, _, _ = clustered_data()
    model = fitted_with_prior(name, data, epochs=1, prior_rank=4)
    model.score(np.arange(4))
    assert {training for training, _ in calls} == {True, False}
    assert all(training == cross_fitted for training, cross_fitted in calls)


@pytest.mark.parametrize("name", ["sasrec", "star"])
def test_prior_dropout_scores_a_share_of_each_batchs_items_by_the_prior_alone(name):
    data, _, _, _ = clustered_data()
    model = fitted_with_prior(name, data, epochs=1, prior_rank=4, prior_dropout=0.3)
    network = model.network
    network.train()
    torch.manual_seed(0)
    items = model.content.batch_items(network, data.n_items)
    network.eval()
    assert model.content.batch_items(network, data.n_items).kept is None  # scoring keeps every item
    kept = items.kept
    assert 0.5 < kept.float().mean() < 0.9  # 60 items, each dropped with probability 0.3
    torch.testing.assert_close(items.table[1:][~kept], torch.zeros_like(items.table[1:][~kept]))
    torch.testing.assert_close(items.table[1:][kept], network.items.weight()[1:][kept])

    sequences = UserSequences.from_data(data)
    inputs, target_events, starts = (torch.from_numpy(part[:12]) for part in training_windows(sequences, 10, 5))
    offsets = sequences.sums_before(network.prior.items[1:], starts.numpy())
    domain = 0 if name == "star" else None
    with torch.no_grad():
        hidden = network.hidden(inputs, items.table, domain, offsets)[target_events >= 0]
        logits = network.logits(hidden, items.table, domain, items.kept)
        full = network.logits(hidden, network.items.weight(), domain)
    prior_only = hidden[:, network.states(hidden).shape[1] :] @ network.prior.item_side()[1:].T
    torch.testing.assert_close(logits[:, ~kept], prior_only[:, ~kept])  # STAR's per-item domain terms dropped too
    assert not torch.allclose(full[:, ~kept], prior_only[:, ~kept])


def test_content_prior_learns_its_gain_and_saves_reloads_and_fine_tunes_from_it(tmp_path):
    data, _, _, _ = clustered_data()
    model = fitted_with_prior("sasrec", data, epochs=3)
    prior = model.network.prior
    assert prior.log_gain.item() != 0.0  # it starts at a gain of 1
    rank = prior.rank
    assert model.parameter_count() == sum(w.numel() for w in model.network.parameters()) + (rank + 1) * rank

    model.save(tmp_path)
    loaded = Recommender.load(tmp_path)
    users = np.arange(data.n_users)
    assert torch.equal(loaded.score(users), model.score(users))

    child = get_algorithm("sasrec")(SMALL_PARAMS["sasrec"] | {"epochs": 1, "content": "prior"}, seed=1)
    child.initialize_from(model, np.arange(data.n_items))
    assert torch.equal(child.network.prior.log_gain, prior.log_gain)  # the child starts from the parent's gain


@pytest.mark.parametrize("content", ["init", "side", "prior"])
def test_content_modes_need_item_features(content):
    model = get_algorithm("sasrec")(SMALL_PARAMS["sasrec"] | {"epochs": 1, "content": content})
    assert model.uses_item_features
    with pytest.raises(ValueError, match="item features"):
        model.fit(successor_data())


def test_init_content_starts_item_embeddings_from_the_features():
    data, _, per_cluster, _ = clustered_data()
    model = get_algorithm("sasrec")(SMALL_PARAMS["sasrec"] | {"epochs": 1, "content": "init", "learning_rate": 1e-6})
    model.fit(data)
    vectors = torch.nn.functional.normalize(model.item_vectors(), dim=1)
    similarity = vectors @ vectors.T
    same_cluster = torch.from_numpy(np.arange(data.n_items) // per_cluster)
    same = same_cluster[:, None] == same_cluster[None, :]
    assert similarity[same].mean() > similarity[~same].mean() + 0.5


@pytest.mark.parametrize("name", ["sasrec", "gru4rec"])
def test_mixed_precision_and_compile_are_accepted_and_ignored_on_the_cpu(name):
    data = successor_data(n_users=30)
    plain = get_algorithm(name)(SMALL_PARAMS[name] | {"epochs": 2}, seed=3)
    flagged = get_algorithm(name)(SMALL_PARAMS[name] | {"epochs": 2, "mixed_precision": True, "compile": True}, seed=3)
    plain.fit(data)
    flagged.fit(data)
    users = np.arange(data.n_users)
    assert torch.equal(plain.score(users), flagged.score(users))


@pytest.mark.parametrize("name", ["sasrec", "gru4rec"])
@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_learning_rate_schedule_sets_each_epochs_step_and_both_learn_the_successor_rule(name, schedule):
    steps = []

    class Recorded(get_algorithm(name)):
        def _train_epoch(self, windows, optimizer, batch_loss):
            steps.append(optimizer.param_groups[0]["lr"])
            return super()._train_epoch(windows, optimizer, batch_loss)

    data = successor_data()
    epochs = 30
    model = Recorded(SMALL_PARAMS[name] | {"epochs": epochs, "learning_rate_schedule": schedule}, seed=0)
    model.fit(data)
    rate = SMALL["learning_rate"]
    if schedule == "cosine":  # from the full step down along half a cosine, the last epoch's step near 0
        assert steps == pytest.approx([rate * (1 + math.cos(math.pi * epoch / epochs)) / 2 for epoch in range(epochs)])
    else:
        assert steps == pytest.approx([rate] * epochs)
    last = data.items.reshape(data.n_users, -1)[:, -1]
    assert np.mean(model.score(np.arange(data.n_users)).argmax(1).numpy() == (last + 1) % data.n_items) >= 0.9


@pytest.mark.parametrize("name", ["sasrec", "gru4rec"])
def test_sampled_softmax_also_learns_the_successor_rule(name):
    data = successor_data()
    model = get_algorithm(name)(SMALL_PARAMS[name] | {"epochs": 40, "loss": "sampled", "negatives": 8}, seed=0)
    model.fit(data)
    last = data.items.reshape(data.n_users, -1)[:, -1]
    assert np.mean(model.score(np.arange(data.n_users)).argmax(1).numpy() == (last + 1) % data.n_items) >= 0.8


def test_heads_must_divide_the_embedding_size():
    with pytest.raises(ValueError, match="heads"):
        get_algorithm("sasrec")({"embedding_size": 30, "heads": 4})
