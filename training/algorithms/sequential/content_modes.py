"""What each ``content`` setting adds to a sequential model: one small class per mode, chosen once per model
(:func:`content_mode`), so the fit, the batches and the transfer call hooks instead of asking which mode is on.

- ``none``: item embeddings alone.
- ``init``: the free embeddings start from the features' principal components
  (:meth:`ItemEmbedding.initialise_from_features`).
- ``side``: a learned projection of the features is added to every item's embedding, with a content-only loss.
- ``prior``: every score adds a content ridge fitted before training (:class:`ContentPrior`), cross-fitted while
  training, with a share of each batch's items scored by the prior alone (``prior_dropout``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch

from training.algorithms.sequential.item_embeddings import ItemEmbedding
from training.algorithms.sequential.network import SequenceNetwork
from training.algorithms.sequential.prior import ContentPrior
from training.interactions import InteractionData

# Makes item vectors of the network's size with side features of the given raw size (0: none).
ItemEmbeddingFactory = Callable[[int], ItemEmbedding]


class FitInputs(NamedTuple):
    """What :meth:`ContentMode.attach` reads of a fit: the item ``features`` (``None`` where the mode reads none),
    the training ``data``, and ``make_items``, which makes item vectors of the network's size."""

    features: torch.Tensor | None
    data: InteractionData
    make_items: ItemEmbeddingFactory


class BatchItems(NamedTuple):
    """One training batch's item vectors (:meth:`ContentMode.batch_items`): ``table`` ``(n_items + 1, d)``;
    ``content`` the content-only vectors when the content loss needs them; ``kept`` ``(n_items,)`` bool with a
    content prior and ``prior_dropout``: the items scored with their own embedding in this batch (the others' rows of
    ``table`` are zero, so the prior alone scores them), else ``None``."""

    table: torch.Tensor
    content: torch.Tensor | None
    kept: torch.Tensor | None


def adopt_side_shape(state: dict[str, torch.Tensor], hparams: dict[str, Any]) -> int:
    """The raw feature size of a network ``state``'s side features (0 without), setting ``hparams["content_rank"]``
    to its rank: the tensors, not the settings, say what shape the network has."""
    if "items.features" not in state:
        return 0
    basis = state.get("items.content_basis")
    hparams["content_rank"] = 0 if basis is None else basis.shape[1]
    return state["items.features"].shape[1] if basis is None else basis.shape[0]


class ContentMode:
    """The hooks a content mode gives; the defaults are those of a mode that reads no features."""

    name: ClassVar[str]
    uses_item_features: ClassVar[bool] = True
    # Items without training events are their content alone: their own weights reset and out of the training softmax.
    content_ranks_unseen_items: ClassVar[bool] = False

    def __init__(self, hparams: dict[str, Any]) -> None:
        self.hparams = hparams

    def features(self, data: InteractionData, device: torch.device) -> torch.Tensor | None:
        """``(n_items, f)`` float32 item features, or ``None`` where the mode reads none."""
        if data.item_features is None:
            raise ValueError(
                f'content="{self.name}" needs item features (InteractionData.item_features, (n_items, d) float32), '
                "and the data has none: embed the items first, or set content to none"
            )
        return torch.from_numpy(np.asarray(data.item_features, dtype=np.float32)).to(device)

    def side_size(self, features: torch.Tensor | None) -> int:
        """The raw feature size of a new network's side input (0: none)."""
        return 0

    def start(self, network: SequenceNetwork, features: torch.Tensor | None) -> None:
        """Set up a new network (not one a parent gave) from the features."""

    def attach(self, network: SequenceNetwork, fit: FitInputs) -> torch.Tensor | None:
        """Put the features into the network for this fit (a fine-tuned one too); returns each user's cross-fitting
        fold ``(n_users,)`` int64 where training windows read per-fold content, else ``None``. Call seeded."""
        return None

    def parent_side_size(self, parent_state: dict[str, torch.Tensor]) -> int:
        """The raw side feature size a child of a network with ``parent_state`` builds with."""
        return 0

    def adopt_parent(self, network: SequenceNetwork, parent: SequenceNetwork) -> None:
        """Give a child's new ``network`` what it takes of its parent's content beyond the copied tensors."""

    def batch_items(self, network: SequenceNetwork, n_items: int) -> BatchItems:
        """The item vectors for one training batch."""
        return BatchItems(network.items.weight(), None, None)


class NoContent(ContentMode):
    name = "none"
    uses_item_features = False

    def features(self, data: InteractionData, device: torch.device) -> torch.Tensor | None:
        return None


class InitContent(ContentMode):
    name = "init"

    def start(self, network: SequenceNetwork, features: torch.Tensor | None) -> None:
        if features is not None:
            network.items.initialise_from_features(features)


class SideContent(ContentMode):
    name = "side"
    content_ranks_unseen_items = True

    def side_size(self, features: torch.Tensor | None) -> int:
        return 0 if features is None else features.shape[1]

    def start(self, network: SequenceNetwork, features: torch.Tensor | None) -> None:
        if features is not None:
            network.items.fit_content_basis(features)

    def attach(self, network: SequenceNetwork, fit: FitInputs) -> torch.Tensor | None:
        """A parent's network without side features (or with others) gets fresh ones of the features' size."""
        features = fit.features
        assert features is not None  # features() raises first
        items = network.items
        if items.feature_size != features.shape[1]:
            fresh = fit.make_items(features.shape[1])
            fresh.table = items.table
            fresh.fit_content_basis(features)
            network.items = fresh.to(items.table.device)
        network.items.set_features(features)
        return None

    def parent_side_size(self, parent_state: dict[str, torch.Tensor]) -> int:
        return adopt_side_shape(parent_state, self.hparams)

    def batch_items(self, network: SequenceNetwork, n_items: int) -> BatchItems:
        """With ``content_loss``, the content-only vectors too (the content projection computed once)."""
        items = network.items
        content = items.content_weight() if self.hparams["content_loss"] and items.has_side_features else None
        return BatchItems(items.weight(content), content, None)


class PriorContent(ContentMode):
    name = "prior"
    content_ranks_unseen_items = True

    def attach(self, network: SequenceNetwork, fit: FitInputs) -> torch.Tensor | None:
        """Fit the content ridge on ``data`` (cross-fitted, :class:`ContentPrior`); a prior of the same rank already
        there (a parent's) keeps its gain."""
        features, data = fit.features, fit.data
        assert features is not None  # features() raises first
        rank = min(self.hparams["prior_rank"] or features.shape[1], features.shape[1])
        folds = min(self.hparams["prior_folds"], max(data.n_users, 1))
        device = network.items.table.device
        user_folds = (torch.randperm(data.n_users) % folds).to(device)
        if network.prior is None or network.prior.rank != rank:
            network.prior = ContentPrior(data.n_items, rank, features.shape[1]).to(device)
        network.prior.fit(features, data.csr().to(device), l2=self.hparams["prior_l2"], user_folds=user_folds)
        return user_folds

    def adopt_parent(self, network: SequenceNetwork, parent: SequenceNetwork) -> None:
        """A prior of the parent's rank, whose gain the copy then takes from the parent."""
        if parent.prior is not None:
            network.prior = ContentPrior(len(network.items.table) - 1, parent.prior.rank, parent.prior.feature_size)

    def batch_items(self, network: SequenceNetwork, n_items: int) -> BatchItems:
        """While training, each item keeps its own embedding with probability ``1 − prior_dropout``, in the batch's
        inputs and outputs alike."""
        table = network.items.weight()
        dropout = self.hparams["prior_dropout"]
        if network.prior is None or dropout <= 0 or not network.training:
            return BatchItems(table, None, None)
        kept = torch.rand(n_items, device=table.device) >= dropout
        return BatchItems(table * torch.cat([kept.new_ones(1), kept])[:, None].to(table.dtype), None, kept)


CONTENT_MODE_CLASSES: dict[str, type[ContentMode]] = {
    mode.name: mode for mode in (NoContent, InitContent, SideContent, PriorContent)
}


def content_mode(hparams: dict[str, Any]) -> ContentMode:
    """The mode ``hparams["content"]`` names (``none`` where the schema has no content setting)."""
    return CONTENT_MODE_CLASSES[hparams.get("content", "none")](hparams)
