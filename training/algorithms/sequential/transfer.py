"""Fine-tuning: a child network starts from its parent's weights (:meth:`SequentialRecommender.initialize_from`)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from training.algorithms.sequential.content_modes import ContentMode
from training.algorithms.sequential.item_embeddings import MixedItemEmbedding
from training.algorithms.sequential.network import NetworkBuilder, SequenceNetwork


def checked_item_map(item_map: np.ndarray, n_parent_items: int, role: str = "parent") -> np.ndarray:
    """``item_map`` as ``(n_items,)`` int64 of the ``role``'s item indexes or -1; raises ``ValueError`` otherwise."""
    item_map = np.asarray(item_map, dtype=np.int64)
    if item_map.ndim != 1 or (len(item_map) and (item_map.max() >= n_parent_items or item_map.min() < -1)):
        raise ValueError(f"item_map must be a 1-D array of {role} item indexes (below {n_parent_items}) or -1")
    return item_map


def network_from_parent(
    parent: SequenceNetwork, item_map: np.ndarray, build: NetworkBuilder, content: ContentMode, device: torch.device
) -> SequenceNetwork:
    """A child network of ``item_map``'s items (see :func:`copy_from_parent`) on ``device``, built by ``build`` with
    the side features ``content`` reads of the parent, given what ``content`` takes of the parent's content and every
    parent tensor it can take."""
    state = parent_state(parent)
    network = build(len(item_map), content.parent_side_size(state))
    content.adopt_parent(network, parent)
    copy_from_parent(network.to(device), state, item_map)
    return network


def parent_state(parent: SequenceNetwork) -> dict[str, torch.Tensor]:
    """The parent's tensors as a child reads them: mixed-dimension items become one full-size table (the child
    learns every item at full size)."""
    state = parent.state_dict()
    if isinstance(parent.items, MixedItemEmbedding):
        state = {name: value for name, value in state.items() if not name.startswith("items.")}
        state["items.table"] = parent.items.weight().detach()
    return state


@torch.no_grad()
def copy_from_parent(network: SequenceNetwork, state: dict[str, torch.Tensor], item_map: np.ndarray) -> None:
    """Copy every parent tensor with the same name and shape into ``network``; item-indexed tensors are gathered
    through ``item_map`` (``(n_items,)`` int64: the parent's index of each item, or -1), and items the parent does
    not know keep their fresh initialisation."""
    device = network.items.table.device
    token_map = torch.from_numpy(np.concatenate([[0], item_map + 1])).to(device)  # 0: padding or unknown
    known = token_map > 0
    known[0] = True
    indexed = network.item_indexed()
    for name, value in network.state_dict().items():
        source = state.get(name)
        if source is None:
            continue
        source = source.to(device)
        if name not in indexed:
            if source.shape == value.shape:
                value.copy_(source)
            continue
        axis = indexed[name]
        other_dims = [dim for dim in range(value.ndim) if dim != axis]
        if [value.shape[dim] for dim in other_dims] != [source.shape[dim] for dim in other_dims]:
            continue
        keep = known.view([-1 if dim == axis else 1 for dim in range(value.ndim)])
        value.copy_(torch.where(keep, source.index_select(axis, token_map), value))


def trainable_parameters(network: SequenceNetwork, *, top_only: bool) -> list[nn.Parameter]:
    """What a fit trains: every weight, or with ``top_only`` (``finetune="top"`` from a parent) the network's top
    (:meth:`SequenceNetwork.top_parameters`), the others frozen."""
    if top_only:
        top = {id(weight) for weight in network.top_parameters()}
        for weight in network.parameters():
            weight.requires_grad_(id(weight) in top)
    return [weight for weight in network.parameters() if weight.requires_grad]
