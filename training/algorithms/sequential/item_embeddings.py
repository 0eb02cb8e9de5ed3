"""Item vectors: free embeddings (optionally with a projection of content features), or of mixed dimensions."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.algorithms.features import principal_directions
from training.algorithms.sequential.layers import INIT_STD


class ItemEmbedding(nn.Module):
    """Item vectors ``(n_items + 1, d)`` (row 0 is padding and always zero), optionally with content.

    With ``side_features`` (content ``side``), item ``i``'s vector is a free embedding plus a learned
    projection of its features ``(f,)``, so an item with few or no events still lands near items with
    similar content, and its score gets a bias learned from its features (how much any user takes to
    an item like it: the popularity its content predicts): the hybrid. With ``side_rank`` the projection
    reads only the features' top principal directions (:meth:`fit_content_basis`). Content ``init`` uses no side
    input; the free embeddings start from the features' principal components instead
    (:meth:`initialise_from_features`).
    """

    # Buffers, with side features only (content_basis and content_mean with side_rank below the features' size).
    features: torch.Tensor
    content_basis: torch.Tensor
    content_mean: torch.Tensor

    def __init__(self, n_items: int, size: int, *, side_features: int = 0, side_rank: int = 0) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.empty(n_items + 1, size).normal_(0.0, INIT_STD))
        if side_features:
            rank = min(side_rank, side_features) if side_rank else side_features
            if rank < side_features:  # set by fit_content_basis; the stored features are the reduced ones
                self.register_buffer("content_basis", torch.eye(side_features)[:, :rank].contiguous())
                self.register_buffer("content_mean", torch.zeros(side_features))
            self.register_buffer("features", torch.zeros(n_items + 1, rank))
            self.projection = nn.Parameter(torch.empty(size, rank).normal_(0.0, INIT_STD))
            self.bias_projection = nn.Parameter(torch.zeros(rank))

    @property
    def has_side_features(self) -> bool:
        return hasattr(self, "projection")

    @property
    def feature_size(self) -> int:
        """Dimensions of the raw features :meth:`set_features` takes (0 without side features)."""
        if not self.has_side_features:
            return 0
        return self.content_basis.shape[0] if hasattr(self, "content_basis") else self.features.shape[1]

    def content_weight(self) -> torch.Tensor:
        """``(n_items + 1, d)``: each item's vector from its content alone (with side features); row 0 is zero."""
        return self.features @ self.projection.T

    def weight(self, content: torch.Tensor | None = None) -> torch.Tensor:
        """``(n_items + 1, d)``: token ``t``'s vector is row ``t``; row 0 is zero. ``content`` is
        :meth:`content_weight` when the caller already has it."""
        table: torch.Tensor = self.table
        if self.has_side_features:
            table = table + (self.content_weight() if content is None else content)
        return torch.cat([torch.zeros_like(table[:1]), table[1:]])

    def bias(self) -> torch.Tensor | None:
        """``(n_items,)``: each item's content bias (with side features), added to every user's score of it."""
        return self.features[1:] @ self.bias_projection if self.has_side_features else None

    @torch.no_grad()
    def set_features(self, features: torch.Tensor) -> None:
        """Use ``features`` ``(n_items, f)`` as the side input (:meth:`side_input`)."""
        self.features[1:] = self.side_input(features)

    @torch.no_grad()
    def side_input(self, features: torch.Tensor) -> torch.Tensor:
        """Raw ``features`` ``(n, f)`` as side input rows ``(n, rank)``: scaled to unit rows (384-d text vectors
        vary), reduced to the content basis if there is one (centred, projected, and scaled to unit rows again).
        Items added after training are placed by the same map."""
        unit = F.normalize(features.float(), dim=1).to(self.features)
        if hasattr(self, "content_basis"):
            reduced = F.normalize((unit - self.content_mean) @ self.content_basis, dim=1)
            unit = torch.where(unit.abs().sum(1, keepdim=True) > 0, reduced, 0.0)  # no content stays no content
        return unit

    @torch.no_grad()
    def fit_content_basis(self, features: torch.Tensor) -> None:
        """Set the content basis to the top principal directions of ``features`` ``(n_items, f)`` (unit rows).

        The projection then reads only the directions along which the items' content varies most: it cannot
        fit the many small ones to the items with events, which would not carry over to the items without.
        """
        if hasattr(self, "content_basis"):
            mean, basis = principal_directions(features, self.content_basis.shape[1])
            self.content_mean.copy_(mean)
            self.content_basis.copy_(basis)

    @torch.no_grad()
    def initialise_from_features(self, features: torch.Tensor) -> None:
        """Set the free embeddings to the features' top principal components (a fixed projection),
        scaled to the usual initial spread."""
        size = self.table.shape[1]
        centred = F.normalize(features.double(), dim=1)
        centred = centred - centred.mean(0, keepdim=True)
        _, _, right = torch.linalg.svd(centred, full_matrices=False)
        projected = (centred @ right[:size].T).float()
        scale = INIT_STD / projected.std().clamp(min=1e-12)
        self.table[1:, : projected.shape[1]] = projected * scale  # beyond the features' rank: keep the noise

    @torch.no_grad()
    def assign(self, items: torch.Tensor, vectors: torch.Tensor) -> None:
        """Set the first ``k`` dimensions of the free embeddings of ``items`` (``(n_items,)`` bool) to ``vectors``
        ``(items.sum(), k)``; the other items and dimensions keep theirs."""
        self.table[1:][items, : vectors.shape[1]] = vectors.to(self.table)


class MixedItemEmbedding(ItemEmbedding):
    """Item vectors of mixed dimensions (Ginart et al., 2019): the ``head`` items (the frequent ones) have free
    ``d``-dimensional embeddings, the others ``t``-dimensional ones mapped up to ``d`` by one shared projection.

    Most of a full table's parameters go to items that are rarely anyone's next item; a narrow tail gives its
    share to the head and the encoder. Parameters: ``table`` ``(1 + head items, d)`` (row 0 is padding),
    ``tail`` ``(tail items, t)`` and ``tail_projection`` ``(t, d)``; buffer ``rows`` ``(n_items + 1,)``: token
    ``t``'s row in ``cat([table, tail @ tail_projection])``. No content side input.
    """

    rows: torch.Tensor

    def __init__(self, head: torch.Tensor, size: int, tail_size: int) -> None:
        """``head`` ``(n_items,)`` bool: the items with full-size embeddings."""
        nn.Module.__init__(self)
        tokens = torch.cat([torch.ones(1, dtype=torch.bool), head.bool().cpu()])  # token 0, padding, is a head row
        n_head, n_tail = int(tokens.sum()), int((~tokens).sum())
        rows = torch.empty(len(tokens), dtype=torch.long)
        rows[tokens], rows[~tokens] = torch.arange(n_head), n_head + torch.arange(n_tail)
        self.register_buffer("rows", rows)
        self.table = nn.Parameter(torch.empty(n_head, size).normal_(0.0, INIT_STD))
        self.tail = nn.Parameter(torch.empty(n_tail, tail_size).normal_(0.0, INIT_STD))
        self.tail_projection = nn.Parameter(torch.empty(tail_size, size).normal_(0.0, tail_size**-0.5))

    @property
    def head(self) -> torch.Tensor:
        """``(n_items,)`` bool: the items with full-size embeddings."""
        return self.rows[1:] < len(self.table)

    def weight(self, content: torch.Tensor | None = None) -> torch.Tensor:
        table = torch.cat([self.table, self.tail @ self.tail_projection])[self.rows]
        return torch.cat([torch.zeros_like(table[:1]), table[1:]])

    @torch.no_grad()
    def assign(self, items: torch.Tensor, vectors: torch.Tensor) -> None:
        """As :meth:`ItemEmbedding.assign`: head items take their vectors as they are; the tail items among
        ``items`` take the best rank-``t`` fit of theirs (least squares), which sets the tail projection too."""
        size = min(vectors.shape[1], self.table.shape[1])
        vectors = vectors[:, :size].to(self.table.device, torch.float64)
        head = self.head.to(items.device)
        self.table[self.rows[1:][items & head], :size] = vectors[head[items]].to(self.table)
        tail = vectors[~head[items]]
        rank = min(self.tail.shape[1], *tail.shape)
        if rank == 0:
            return
        left, singular, right = torch.linalg.svd(tail, full_matrices=False)
        self.tail[self.rows[1:][items & ~head] - len(self.table), :rank] = (left[:, :rank] * singular[:rank]).to(
            self.tail
        )
        self.tail_projection[:rank, :size] = right[:rank].to(self.tail_projection)
