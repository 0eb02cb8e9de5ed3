"""The content prior: a content ridge fitted before training whose score every logit adds (content ``prior``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from training.algorithms.content_ridge import project_content, ridge_query_map
from training.algorithms.features import principal_directions


class ContentPrior(nn.Module):
    """A content ridge (:mod:`training.algorithms.content_ridge`) fitted before training, whose score every logit
    adds: the user side is the ridge's query from the content of the items read so far, the item side each item's
    reduced content times a learned gain. An item without events, whose free embedding stays zero, is ranked by
    this score alone; the network learns what the content does not explain.

    Training is cross-fitted: the ridge fitted on every user scores, but it has seen each training target, so on
    the training windows it looks better than it is on what comes next, and a network trained against it leans on
    it too much. While training, each user therefore belongs to one of ``k`` folds, and their windows read the map
    fitted without that fold's users (``fold_maps``), which scores them as it will score a held-out event.

    Buffers: ``items`` ``(n_items + 1, r)`` (row 0, padding, is zero), ``query_map`` ``(r + 1, r)``, the reduction
    of the raw features, ``content_mean`` ``(f,)`` and ``content_basis`` ``(f, r)`` (``f = 0`` in artifacts saved
    before they were kept: such a prior cannot place items added after training), and, while training,
    ``fold_maps`` ``(k, r + 1, r)`` (not saved); parameter ``log_gain`` (the gain is its exponential, so it stays
    positive and never reverses the content's order).
    """

    items: torch.Tensor
    query_map: torch.Tensor
    content_mean: torch.Tensor
    content_basis: torch.Tensor
    fold_maps: torch.Tensor | None

    def __init__(self, n_items: int, rank: int, feature_size: int = 0) -> None:
        super().__init__()
        self.register_buffer("items", torch.zeros(n_items + 1, rank))
        self.register_buffer("query_map", torch.zeros(rank + 1, rank))
        self.register_buffer("content_mean", torch.zeros(feature_size))
        self.register_buffer("content_basis", torch.zeros(feature_size, rank))
        self.register_buffer("fold_maps", None, persistent=False)
        self.log_gain = nn.Parameter(torch.zeros(()))

    @property
    def rank(self) -> int:
        return self.items.shape[1]

    @property
    def feature_size(self) -> int:
        """The raw feature size :meth:`place` reads (0: a prior that cannot place new items)."""
        return self.content_basis.shape[0]

    @torch.no_grad()
    def fit(
        self,
        features: torch.Tensor,
        interactions: torch.Tensor,
        *,
        l2: float,
        user_folds: torch.Tensor,
    ) -> None:
        """Reduce raw ``features`` ``(n_items, f)`` to their top ``rank`` principal directions and fit the ridge on
        them and sparse CSR ``interactions`` ``(n_users, n_items)``: ``query_map`` on every user, and one map per
        fold of ``user_folds`` ``(n_users,)`` int64 (folds ``0..k−1``; a single fold keeps no fold maps: every
        window reads ``query_map``)."""
        mean, basis = principal_directions(features, self.rank)
        self.content_mean, self.content_basis = mean.to(self.items), basis.to(self.items)
        items = project_content(features, mean, basis)
        self.items[1:] = items.to(self.items)
        self.query_map.copy_(ridge_query_map(items, interactions, l2=l2))
        n_folds = int(user_folds.max()) + 1 if len(user_folds) else 1
        self.fold_maps = None
        if n_folds > 1:
            self.fold_maps = torch.stack(
                [ridge_query_map(items, interactions, l2=l2, users=user_folds != fold) for fold in range(n_folds)]
            ).to(self.query_map)

    def queries(
        self, tokens: torch.Tensor, offsets: torch.Tensor | None = None, folds: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``tokens`` ``(b, L)`` → ``(b, L, r)``: at position ``j``, the query of the content of tokens ``0..j``
        plus ``offsets`` ``(b, r)`` (the content of the items each row's history had before its tokens). With
        ``folds`` ``(b,)`` (training windows), row ``i`` reads ``fold_maps[folds[i]]`` instead of ``query_map``."""
        profiles = self.items[tokens].cumsum(dim=1)
        if offsets is not None:
            profiles = profiles + offsets[:, None, :]
        if folds is None or self.fold_maps is None:
            return profiles @ self.query_map[:-1] + self.query_map[-1]
        queries = torch.empty_like(profiles)
        for fold, query_map in enumerate(self.fold_maps):
            rows = folds == fold
            queries[rows] = profiles[rows] @ query_map[:-1] + query_map[-1]
        return queries

    def offsets(self, histories: Sequence[Sequence[int]], max_length: int) -> torch.Tensor:
        """``(len(histories), r)``: the content of each history's items before its last ``max_length``."""
        sums = torch.zeros(len(histories), self.rank, device=self.items.device)
        for row, history in enumerate(histories):
            earlier = np.asarray(history, dtype=np.int64).reshape(-1)[:-max_length]
            if len(earlier):
                sums[row] = self.items[torch.from_numpy(earlier + 1).to(self.items.device)].sum(0)
        return sums

    def item_side(self) -> torch.Tensor:
        """``(n_items + 1, r)``: the items' reduced content times the gain."""
        return self.items * self.log_gain.exp()

    @torch.no_grad()
    def place(self, features: torch.Tensor) -> torch.Tensor:
        """``(n, r)``: the gain-scaled reduced content of items outside the fit from their raw ``features``
        ``(n, f)``, as :meth:`item_side` gives the fitted ones'. Needs ``feature_size`` (see the class)."""
        items = project_content(features.to(self.content_basis), self.content_mean, self.content_basis)
        return items * self.log_gain.exp()
