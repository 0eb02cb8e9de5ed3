"""The tensors a sequential model is saved as, and reading them back: what
:meth:`~training.algorithms.sequential.recommender.SequentialRecommender.state_tensors` and ``load_state_tensors``
call.

A model is saved as its network's tensors (named ``network.<name>``), each user's latest tokens (``histories``)
and, with a content prior, the content of each user's items before them (``history_offsets``).
"""

from __future__ import annotations

from typing import Any

import torch

from training.algorithms.sequential.content_modes import adopt_side_shape
from training.algorithms.sequential.network import NetworkBuilder, SequenceNetwork
from training.algorithms.sequential.prior import ContentPrior

HISTORY_TENSORS = ("histories", "history_offsets")


def saved_tensors(
    network: SequenceNetwork, histories: torch.Tensor, history_offsets: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """The tensors a model with ``network`` and these histories is saved as."""
    state = {f"network.{name}": value.detach() for name, value in network.state_dict().items()}
    offsets = {} if history_offsets is None else {"history_offsets": history_offsets}
    return state | {"histories": histories} | offsets


def network_state(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The network's part of saved ``tensors``, named as its ``state_dict`` names them; a content prior saved before
    it kept its content mean and basis gets empty ones."""
    state = {name.removeprefix("network."): value for name, value in tensors.items() if name not in HISTORY_TENSORS}
    if "prior.items" in state and "prior.content_basis" not in state:  # saved before the prior kept them
        state["prior.content_mean"] = state["prior.items"].new_zeros(0)
        state["prior.content_basis"] = state["prior.items"].new_zeros(0, state["prior.items"].shape[1])
    return state


def shapes_differ(network: SequenceNetwork, state: dict[str, torch.Tensor]) -> bool:
    """Whether ``state`` names other tensors than ``network`` has, or any of another shape."""
    current = network.state_dict()
    return current.keys() != state.keys() or any(current[name].shape != state[name].shape for name in state)


def network_for_state(
    state: dict[str, torch.Tensor], hparams: dict[str, Any], build: NetworkBuilder, device: torch.device
) -> SequenceNetwork:
    """A fresh network of the shapes ``state`` has, built by ``build`` on ``device``: the tensors, not the settings,
    say its number of items, its side features (``hparams["content_rank"]`` set to theirs) and its content prior."""
    feature_size = adopt_side_shape(state, hparams)
    rows = state["items.rows"] if "items.rows" in state else state["items.table"]  # mixed: one row each
    network = build(len(rows) - 1, feature_size).to(device)
    if "prior.items" in state:
        n_tokens, rank = state["prior.items"].shape
        prior = ContentPrior(n_tokens - 1, rank, state["prior.content_basis"].shape[0])
        network.prior = prior.to(device)
    return network


def saved_histories(tensors: dict[str, torch.Tensor], device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The ``histories`` (int64) and ``history_offsets`` (float32, ``None`` without a prior) of saved ``tensors``."""
    offsets = tensors.get("history_offsets")
    return tensors["histories"].long().to(device), None if offsets is None else offsets.float().to(device)
