"""EASE adapted per member: the union's model at transfer 1, the member alone at 0, one solution in either space, each
member scored in its own items, and a transfer chosen on the member's validation events."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.factories import interactions
from tests.test_algorithms_contract import planted_data
from training.algorithms.adapted_ease import ItemSpaceSolver, UserSpaceSolver, member_held_out
from training.algorithms.base import EpochReport, Recommender
from training.algorithms.history import History, history_scores
from training.algorithms.registry import get_algorithm
from training.evaluation.ranking import mean_ndcg
from training.evaluation.splits import select_events, split_random
from training.interactions import InteractionData

L2 = 5.0


def _two_members(n_users: int = 40) -> InteractionData:
    """Planted data over 60 items; the items from 30 on are the second member's."""
    data = planted_data(n_users=n_users, n_items=60)
    return dataclasses.replace(data, domains=(data.items >= 30).astype(np.int64))


def _solvers(data: InteractionData) -> dict[str, object]:
    rows = torch.zeros(data.n_users, data.n_items, dtype=torch.float64)
    rows[data.users, data.items] = 1.0
    return {
        "users": UserSpaceSolver(rows, L2),
        "items": ItemSpaceSolver(rows.T @ rows, lambda users: rows[users], L2),
    }


@pytest.mark.parametrize("space", ["users", "items"])
def test_transfer_one_is_ease_on_the_union_and_zero_is_ease_on_the_member_alone(space):
    data = _two_members()
    solver = _solvers(data)[space]
    member = torch.arange(30, 60)
    union = get_algorithm("ease")({"l2": L2})
    union.fit(data)
    alone_data = select_events(data, np.flatnonzero(data.items >= 30))
    alone_data = dataclasses.replace(alone_data, items=alone_data.items - 30, n_items=30, domains=None)
    alone = get_algorithm("ease")({"l2": L2})
    alone.fit(alone_data)

    at_one, at_zero = solver.weight_columns(member, 1.0).float(), solver.weight_columns(member, 0.0).float()

    assert torch.allclose(at_one, union._solve()[:, member], atol=1e-6)
    assert torch.allclose(at_zero[member], alone._solve(), atol=1e-6)
    assert not at_zero[:30].any()  # no weight from the other member's items


def test_the_users_and_the_items_space_give_one_solution():
    data = _two_members()
    by_users, by_items = _solvers(data).values()
    member, users = torch.arange(30, 60), torch.arange(data.n_users)
    for transfer in (1.0, 0.25, 1 / 64, 0.0):
        weights = by_users.weight_columns(member, transfer)
        assert torch.allclose(weights, by_items.weight_columns(member, transfer), atol=1e-6)
        scores = by_users.member_scorer(member, transfer)(users)
        assert torch.allclose(scores, by_items.member_scorer(member, transfer)(users), atol=1e-9)


def test_each_member_is_scored_in_its_own_items_only(tmp_path: Path):
    data = _two_members(n_users=120)
    assert len(np.unique(data.items)) == 60  # every item has events, so belongs to a member
    model = get_algorithm("adapted_ease")({"l2": L2})
    model.set_domain_names(["action", "drama"])
    model.fit(data)
    model.save(tmp_path)
    loaded = Recommender.load(tmp_path)

    for domain, own in ((0, slice(0, 30)), (1, slice(30, 60))):
        scores = loaded.score([0, 1, 2], domain=domain)
        assert torch.isfinite(scores[:, own]).all()
        assert int(torch.isfinite(scores).sum()) == 3 * 30
        history = History(items=np.array([0, 31, 40]), weights=np.ones(3, dtype=np.float32))
        served = history_scores(loaded, history, domain=domain)
        assert torch.isfinite(served[own]).all() and int(torch.isfinite(served).sum()) == 30
    assert loaded.domain_names == ["action", "drama"]
    assert torch.equal(loaded.score([0, 1, 2]), model.score([0, 1, 2]))  # every item, by its own member's columns
    with pytest.raises(ValueError, match="domain must be from 0 to 1"):
        loaded.score([0], domain=2)


def _cross_member_data(seed: int = 0) -> InteractionData:
    """Four taste groups. The first member (items 0–23) shows each user's group clearly (5 of its 6 items); in the
    second (items 24–47) each user has 3 items, 2 of them of the group's: little to learn from on its own."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for user in range(160):
        group = rng.integers(4)
        first = rng.choice(np.arange(group, 24, 4), size=5, replace=False)
        second = [*rng.choice(np.arange(24 + group, 48, 4), size=2, replace=False), rng.integers(24, 48)]
        chosen = sorted({*first.tolist(), *map(int, second)})
        users += [user] * len(chosen)
        items += chosen
    return interactions(users, items, n_users=160, n_items=48, domains=np.array(items) >= 24)


def test_a_member_with_little_of_its_own_takes_transfer_from_the_group_and_gains_by_it():
    split = split_random(_cross_member_data(), seed=3, ratios=(0.6, 0.2, 0.2))
    reports: list[EpochReport] = []
    model = get_algorithm("adapted_ease")({"l2": 20.0})
    model.fit(split.train, reports.append, validation=split.validation)
    transfer = model.member_transfers()["1"]
    assert transfer > 0.0 and reports[-1].validation["transfer_2"] == transfer

    alone = _MemberAlone(split.train, 24)
    test = member_held_out(split.test, np.arange(24, 48))
    adapted = mean_ndcg(_Domain(model, 1), split.train, test)
    assert adapted > mean_ndcg(alone, split.train, test) + 0.05


class _Domain:
    def __init__(self, model, domain: int) -> None:
        self.model, self.domain = model, domain

    def score(self, users):
        return self.model.score(users, domain=self.domain)


class _MemberAlone:
    """EASE fitted on the member's events alone (its items from ``first_item`` on), its other items ``-inf``."""

    def __init__(self, train: InteractionData, first_item: int) -> None:
        own = select_events(train, np.flatnonzero(train.items >= first_item))
        own = dataclasses.replace(own, items=own.items - first_item, n_items=train.n_items - first_item, domains=None)
        self.model, self.first_item, self.n_items = get_algorithm("ease")({"l2": 20.0}), first_item, train.n_items
        self.model.fit(own)

    def score(self, users):
        scores = torch.full((len(users), self.n_items), -torch.inf)
        scores[:, self.first_item :] = self.model.score(users)
        return scores
