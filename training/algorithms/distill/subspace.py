"""The student's start from its teacher: the teacher's states and item vectors mapped into the student's ``d``
dimensions so that their products are the best rank-``d`` approximation of the teacher's scores."""

from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass(frozen=True)
class Subspace:
    """Maps of a teacher's states (``states``, ``(D, k)``) and item vectors (``items``, ``(D, k)``) into ``k``
    dimensions: ``(H @ states) @ (E @ items).T`` is the best rank-``k`` approximation of the scores ``H @ E.T``
    in the least-squares sense, with ``k = min(d, D)``. The item side keeps the teacher's vectors' mean square
    per dimension; the state side takes the singular values."""

    states: torch.Tensor
    items: torch.Tensor

    @classmethod
    def fit(cls, states: torch.Tensor, vectors: torch.Tensor, size: int) -> Subspace:
        """From the teacher's ``states`` ``(P, D)`` and ``vectors`` ``(n, D)`` (float64)."""
        return cls.from_grams(states.T @ states / max(len(states), 1), vectors.T @ vectors / max(len(vectors), 1), size)

    @classmethod
    def from_grams(cls, states: torch.Tensor, items: torch.Tensor, size: int) -> Subspace:
        """From the mean outer products ``(D, D)`` of the teacher's states and of its item vectors (float64)."""
        root_states, unroot_states = _square_roots(states)
        root_items, unroot_items = _square_roots(items)
        left, singular, right = torch.linalg.svd(root_states @ root_items)
        k = min(size, states.shape[1])
        scale = (torch.trace(items) / items.shape[0]).sqrt().clamp_min(1e-12)
        return cls(
            states=unroot_states @ left[:, :k] * (singular[:k] / scale),
            items=unroot_items @ right[:k].T * scale,
        )


def _square_roots(gram: torch.Tensor, floor: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """The symmetric square root of a positive semi-definite matrix and of its inverse, eigenvalues floored at
    ``floor`` times the largest."""
    values, vectors = torch.linalg.eigh(gram)
    values = values.clamp_min(floor * values.max().clamp_min(1e-300))
    return (vectors * values.sqrt()) @ vectors.T, (vectors / values.sqrt()) @ vectors.T
