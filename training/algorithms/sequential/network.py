"""The network every sequential model scores with: item embeddings, an encoder and an optional content prior."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn

from training.algorithms.sequential.item_embeddings import ItemEmbedding
from training.algorithms.sequential.layers import Encoder
from training.algorithms.sequential.prior import ContentPrior

# The number of items and the raw size of their side features (0: none) → a fresh network.
NetworkBuilder = Callable[[int, int], "SequenceNetwork"]


class SequenceNetwork(nn.Module):
    """Item embeddings and an encoder; logits are dot products with the (tied) item embeddings.

    With a :class:`ContentPrior` (content ``prior``), a state carries the prior's query beside the encoder's output
    and an item's output vector its content beside its embedding, so one dot product gives both terms.
    """

    prior: ContentPrior | None
    encoder: Encoder

    def __init__(self, items: ItemEmbedding, encoder: Encoder) -> None:
        super().__init__()
        self.items = items
        self.encoder = encoder
        self.prior = None
        self._kept_table: tuple[tuple, torch.Tensor] | None = None

    def scoring_table(self) -> torch.Tensor:
        """:meth:`ItemEmbedding.weight` for scoring without gradients, kept from one call to the next until one of the
        item embedding's tensors changes (replaced, or changed in place: an optimiser step, a load) or autocast is
        switched. A served request would otherwise copy the whole table (and, with content ``side``, project every
        item's features) to score one history."""
        if torch.is_grad_enabled():
            return self.items.weight()
        tensors = [*self.items.parameters(), *self.items.buffers()]
        key = (
            torch.is_autocast_enabled(tensors[0].device.type),
            tuple((id(tensor), tensor.data_ptr(), tensor._version) for tensor in tensors),
        )
        if self._kept_table is None or self._kept_table[0] != key:
            self._kept_table = (key, self.items.weight())
        return self._kept_table[1]

    def hidden(
        self,
        tokens: torch.Tensor,
        table: torch.Tensor,
        domain: int | None = None,
        offsets: torch.Tensor | None = None,
        folds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``tokens`` ``(b, L)`` → states ``(b, L, d)`` (``(b, L, d + r)`` with a prior): position ``j`` has read
        tokens ``0..j``; the prior reads the content of the items before them too (``offsets``) and, on training
        windows, each row's fold's map (``folds``; see :meth:`ContentPrior.queries`).

        ``table`` is :meth:`ItemEmbedding.weight`, computed once per batch by the caller.
        """
        states = self.encoder(table[tokens], domain)
        if self.prior is None:
            return states
        return torch.cat([states, self.prior.queries(tokens, offsets, folds).to(states.dtype)], dim=-1)

    def states(self, hidden: torch.Tensor) -> torch.Tensor:
        """The encoder's part ``(..., d)`` of :meth:`hidden`'s states."""
        return hidden[..., : self.items.table.shape[1]]

    def output_table(self, table: torch.Tensor) -> torch.Tensor:
        """``(n_items + 1, d)`` (``d + r`` with a prior): what states are scored against, row 0 padding."""
        if self.prior is None:
            return table
        return torch.cat([table, self.prior.item_side().to(table.dtype)], dim=1)

    def logits(
        self, hidden: torch.Tensor, table: torch.Tensor, domain: int | None = None, kept: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(P, d)`` states → ``(P, n_items)`` scores of every item: ``hidden @ output_table(table)[1:].T``, the
        prior's part computed apart (its queries and content are fixed, so only the gain needs its gradient).
        ``kept`` ``(n_items,)`` bool (training, :class:`BatchItems`): the items whose own per-item terms count;
        the others' rows of ``table`` are zero already."""
        prior = self.prior
        if prior is None:
            scores = hidden @ table[1:].T
        else:
            size = table.shape[1]
            with torch.no_grad():
                content = hidden[..., size:] @ prior.items[1:].T.to(hidden.dtype)
            scores = self.states(hidden) @ table[1:].T + prior.log_gain.exp().to(hidden.dtype) * content
        bias = self.items.bias()
        if bias is not None and kept is not None:
            bias = bias * kept
        return scores if bias is None else scores + bias.to(scores.dtype)

    def places_new_items(self) -> bool:
        """Whether :meth:`new_item_vectors` can place items outside the fit: content ``side`` or ``prior`` (one that
        kept its reduction of the features)."""
        if self.prior is not None:
            return self.prior.feature_size > 0
        return self.items.has_side_features

    @torch.no_grad()
    def new_item_vectors(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Items outside the fit from their raw content ``features`` ``(n, f)``: output vectors ``(n, d)`` (``d + r``
        with a prior, as :meth:`output_table`'s rows) and biases ``(n,)``. They are scored as the fit's items
        without events are: their free embedding (and any other per-item term) zero, their content alone."""
        items, size = self.items, self.items.table.shape[1]
        vectors = features.new_zeros(len(features), size).to(items.table)
        bias = vectors.new_zeros(len(features))
        if items.has_side_features:
            side = items.side_input(features)
            vectors, bias = side @ items.projection.T, side @ items.bias_projection
        if self.prior is not None:
            vectors = torch.cat([vectors, self.prior.place(features).to(vectors)], dim=1)
        return vectors, bias

    def item_indexed(self) -> dict[str, int]:
        """Tensors with one entry per token along an axis (name → axis): gathered, not copied, on transfer."""
        return {"items.table": 0, "items.features": 0, "prior.items": 0}

    @torch.no_grad()
    def forget_items(self, items: torch.Tensor) -> None:
        """Zero the learned per-item weights of ``items`` (``(n_items,)`` bool): their free embeddings."""
        self.items.table[1:][items] = 0.0

    def top_parameters(self) -> Iterator[nn.Parameter]:
        """What ``finetune="top"`` trains: the encoder's top, the output normalisation and the item embeddings."""
        yield from self.encoder.top_parameters()
        yield from self.items.parameters()  # the free embeddings (and any content or tail projection)
        if self.prior is not None:
            yield self.prior.log_gain
