"""Blend weights: per-user normalised scores of several models, mixed by weights fitted on validation only.

A blend's weights are chosen among the points of a grid on the simplex (``step`` apart) by validation NDCG@10,
training items excluded, with the one-standard-error rule: of the mixes whose validation NDCG is within one
paired standard error of the best mix's, the one leaning most on the member that is best alone. On a few hundred
validation users a mix better by less than its noise wins by chance, and then loses on test. Nothing else is
read: the function takes no test set, so test events cannot shape the weights. Plain NumPy and PyTorch, no Django.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from training.evaluation.ranking import users_ndcg
from training.interactions import HeldOut, InteractionData


def per_user_normalised(scores: torch.Tensor) -> torch.Tensor:
    """Each row of ``(n_users, n_items)`` scores centred and scaled to unit deviation (a constant row is 0)."""
    centred = scores - scores.mean(dim=1, keepdim=True)
    spread = centred.std(dim=1, keepdim=True)
    return torch.where(spread > 0, centred / spread.clamp_min(1e-12), torch.zeros_like(centred))


def simplex_grid(members: int, step: float) -> list[tuple[float, ...]]:
    """Every weight vector of ``members`` non-negative multiples of ``step`` summing to 1."""
    units = round(1 / step)
    if members < 2 or units < 1 or abs(units * step - 1) > 1e-9:
        raise ValueError("a blend needs at least two members and a step dividing 1")
    points = (c for c in itertools.product(range(units + 1), repeat=members - 1) if sum(c) <= units)
    return [tuple(n / units for n in (*c, units - sum(c))) for c in points]


class _Mixed:
    """A scorer over precomputed normalised member scores ``(members, n_users, n_items)`` and weights."""

    def __init__(self, normalised: torch.Tensor, weights: Sequence[float]) -> None:
        self.mixed = torch.einsum("m,mui->ui", torch.tensor(weights, dtype=normalised.dtype), normalised)

    def score(self, users: np.ndarray) -> torch.Tensor:
        return self.mixed[torch.as_tensor(np.asarray(users, dtype=np.int64))]


class BlendFit(NamedTuple):
    """The chosen weights (one per member, summing to 1) and their validation NDCG@10; the best mix on validation
    and its NDCG@10; the paired standard error of the difference between the two (0 when they are one)."""

    weights: tuple[float, ...]
    ndcg: float
    best_weights: tuple[float, ...]
    best_ndcg: float
    standard_error: float


def blend_weights_fit(
    member_scores: Sequence[torch.Tensor], train: InteractionData, validation: HeldOut, *, step: float = 0.1
) -> BlendFit:
    """The weights chosen on validation NDCG@10, with the best mix they were weighed against.

    ``member_scores`` are each member's ``(n_users, n_items)`` scores of every user (the same index). The best
    mix on validation is kept only where it beats, by more than one standard error of the per-user differences,
    every mix leaning more on the best single member (see the module's note).
    """
    if validation.n_pairs == 0:
        raise ValueError("blend weights are fitted on validation: the validation set is empty")
    normalised = torch.stack([per_user_normalised(scores.float()) for scores in member_scores])
    grid = simplex_grid(len(member_scores), step)
    per_user = np.stack([users_ndcg(_Mixed(normalised, weights), train, validation, k=10) for weights in grid])
    means = per_user.mean(axis=1)
    alone = [grid.index(tuple(float(j == m) for j in range(len(member_scores)))) for m in range(len(member_scores))]
    leader = max(range(len(member_scores)), key=lambda m: means[alone[m]])
    best = max(range(len(grid)), key=lambda p: (means[p], grid[p][leader]))
    close = [p for p in range(len(grid)) if means[best] - means[p] <= _paired_error(per_user[best], per_user[p])]
    chosen = max(close, key=lambda p: (grid[p][leader], means[p]))
    error = _paired_error(per_user[best], per_user[chosen]) if chosen != best else 0.0
    return BlendFit(grid[chosen], float(means[chosen]), grid[best], float(means[best]), error)


def _paired_error(first: np.ndarray, second: np.ndarray) -> float:
    """The standard error of the mean of the per-user differences (0 for fewer than two users)."""
    if len(first) < 2:
        return 0.0
    return float(np.std(first - second, ddof=1) / np.sqrt(len(first)))
