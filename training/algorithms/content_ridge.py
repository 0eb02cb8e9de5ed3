"""Content ridge: a closed-form model of which content a user's history calls for; it ranks items with no
events as well as any other.

Items are their content features (unit rows, centred, reduced to the top ``rank`` principal directions): ``c_i``.
A user is the sum of the content of their training items plus a constant, ``a_u = [Σ_{j∈u} c_j, 1]``, and the
model scores ``s(u, i) = a_u · W c_i``. ``W`` ``(rank + 1, rank)`` is the ridge regression of the binary
interaction matrix ``X`` (users × the items that have events) on both sides' content::

    min_W ‖X − A W Bᵀ‖² + λ ‖W‖²        (A: the users' a_u, B: those items' c_i)

solved exactly in the eigenbases of ``AᵀA`` and ``BᵀB``: with ``AᵀA = U diag(σ) Uᵀ`` and ``BᵀB = V diag(τ) Vᵀ``,
``W = U [(Uᵀ Aᵀ X B V) / (σ τᵀ + λ)] Vᵀ``. ``λ`` is ``l2`` times ``max σ · max τ``, so one setting carries
across catalogue sizes and history lengths. The constant's row of ``W`` learns what content every user takes to
(the popularity that content predicts); the other rows, which content goes with which. Fitting on every pair of
user and item, the zeros included, with strong shrinkage of the small eigendirections is what lets the map carry
over to items it never saw: items without events are left out of the fit (nobody could have met them, so their
zeros say nothing) and are scored by the same formula from their content alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from training.algorithms.base import (
    DotProductRecommender,
    EpochReport,
    ProgressCallback,
    no_progress,
    validation_scores,
)
from training.algorithms.features import item_features, principal_directions
from training.algorithms.params import Param
from training.algorithms.registry import register
from training.interactions import HeldOut, InteractionData

RANK = Param("rank", int, 64, help="Principal directions of the item features the model reads (0: every one); "
             "well below the number of items with events, or it fits them exactly and carries nothing over.",
             minimum=0, maximum=4096)  # fmt: skip
L2 = Param("l2", float, 3e-3, help="Ridge penalty, relative to the product of the largest eigenvalues of the "
           "users' and the items' content Gram matrices.", minimum=1e-9, maximum=1e3)  # fmt: skip


@dataclass(frozen=True)
class ContentRidgeFit:
    """A fitted content ridge: ``items`` ``(n_items, r)`` reduced content (zero rows for items without content)
    and ``query_map`` ``(r + 1, r)``; a user's query is ``[Σ_{j∈u} items_j, 1] @ query_map``."""

    items: torch.Tensor
    query_map: torch.Tensor

    def queries(self, profiles: torch.Tensor) -> torch.Tensor:
        """``profiles`` ``(..., r)`` (sums of the items' content) → queries ``(..., r)``: ``[p, 1] @ W``."""
        return profiles @ self.query_map[:-1] + self.query_map[-1]


def reduced_content(features: torch.Tensor, rank: int) -> torch.Tensor:
    """``(n_items, r)``: unit rows, centred and projected on their top ``rank`` principal directions (0: all);
    items whose features are zero (no content) stay zero."""
    rank = min(rank or features.shape[1], features.shape[1])
    mean, basis = principal_directions(features, rank)
    return project_content(features, mean, basis)


def project_content(features: torch.Tensor, mean: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``features`` ``(n, f)`` as reduced content ``(n, r)`` under a fitted ``mean`` ``(f,)`` and ``basis``
    ``(f, r)``: how items added after a fit are placed among the fitted ones. Zero rows stay zero."""
    unit = torch.nn.functional.normalize(features.double(), dim=1)
    reduced = (unit - mean.double()) @ basis.double()
    return torch.where(unit.abs().sum(1, keepdim=True) > 0, reduced, 0.0).to(features.dtype)


def content_ridge_fit(features: torch.Tensor, interactions: torch.Tensor, *, rank: int, l2: float) -> ContentRidgeFit:
    """Fit the content ridge (module docstring) to the binary sparse CSR ``interactions`` ``(n_users, n_items)``
    with item ``features`` ``(n_items, f)``. Solved in float64; the result is in ``features``' dtype."""
    items = reduced_content(features, rank)
    return ContentRidgeFit(items, ridge_query_map(items, interactions, l2=l2))


def ridge_query_map(
    items: torch.Tensor, interactions: torch.Tensor, *, l2: float, users: torch.Tensor | None = None
) -> torch.Tensor:
    """The content ridge's ``W`` ``(r + 1, r)`` for reduced content ``items`` ``(n_items, r)``, fitted on the rows
    of ``interactions`` (sparse CSR ``(n_users, n_items)``) that ``users`` ``(n_users,)`` bool keeps (default:
    every row). Fitting on part of the users gives the map that never saw the others (cross-fitting)."""
    items64 = items.double()
    profiles = interactions.double() @ items64  # (n_users, r): X B, each user's sum of their items' content
    columns = interactions.col_indices()
    if users is not None:
        users = users.to(profiles.device)
        profiles = profiles[users]
        row_of_event = torch.repeat_interleave(
            torch.arange(interactions.shape[0], device=columns.device), interactions.crow_indices().diff()
        )
        columns = columns[users.to(columns.device)[row_of_event]]
    seen = torch.bincount(columns, minlength=interactions.shape[1]) > 0
    design = torch.cat([profiles, torch.ones_like(profiles[:, :1])], dim=1)  # A
    user_values, user_vectors = torch.linalg.eigh(design.T @ design)
    item_values, item_vectors = torch.linalg.eigh(items64[seen].T @ items64[seen])
    user_values, item_values = user_values.clamp(min=0), item_values.clamp(min=0)
    penalty = l2 * user_values.max() * item_values.max()
    if not float(penalty) > 0:  # no events or no content: nothing to learn, every score is 0
        return items.new_zeros(items.shape[1] + 1, items.shape[1])
    # AᵀXB = Aᵀ(XB): every product the solution needs comes from the users' content sums.
    rotated = user_vectors.T @ (design.T @ profiles) @ item_vectors  # Uᵀ Aᵀ X B V
    query_map = user_vectors @ (rotated / (user_values[:, None] * item_values[None, :] + penalty)) @ item_vectors.T
    return query_map.to(items.dtype)


@register
class ContentRidge(DotProductRecommender):
    name = "content_ridge"
    label = "Content ridge (closed form)"
    family = "content"
    description = (
        "Learns in closed form which item content a user's history calls for: a ridge regression of the "
        "interaction matrix on the text embeddings of the users' items and of the candidate items. Ranks items "
        "with no events from their text, as well as items with events; suited to catalogues with new items."
    )
    params = (
        RANK,
        L2,
        Param("use_event_weights", bool, False, help="Weigh each history item by its event weight in the user's "
              "content sum (the fit's targets stay binary)."),
    )  # fmt: skip
    user_tensor, item_tensor = "user_queries", "item_content"
    uses_item_features = True

    def fit(
        self, data: InteractionData, progress: ProgressCallback = no_progress, *, validation: HeldOut | None = None
    ) -> None:
        self.n_users, self.n_items = data.n_users, data.n_items
        features = torch.from_numpy(item_features(data, model=self.name)).to(self.device)
        rank = min(self.hparams["rank"] or features.shape[1], features.shape[1])
        self.content_mean, self.content_basis = principal_directions(features, rank)
        items = project_content(features, self.content_mean, self.content_basis)
        self.query_map = ridge_query_map(items, data.csr(binary=True).to(self.device), l2=self.hparams["l2"])
        history = data.csr(binary=not self.hparams["use_event_weights"]).to(self.device)
        self.item_content = items
        self.user_queries = self.fitted().queries(history @ items)
        progress(EpochReport(phase="fit", step=1, total=1, validation=validation_scores(self, data, validation)))

    # Kept so that a history read at serving time, and items added after the fit, are scored as in training.
    extra_tensors = ("query_map", "content_mean", "content_basis")

    def fitted(self) -> ContentRidgeFit:
        return ContentRidgeFit(self.item_content, self.query_map)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return super().state_tensors() | {name: getattr(self, name).detach() for name in self.extra_tensors}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        super().load_state_tensors(tensors)
        for name in self.extra_tensors:  # absent from artifacts saved before they were kept
            setattr(self, name, tensors[name].float().to(self.device) if name in tensors else None)
