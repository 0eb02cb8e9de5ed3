"""How the sequential models score: right-padded token histories through the network in chunks, what scoring
reads of each user, the items added after training, and the scorer after given histories (:class:`HistoryScorer`).

:class:`~training.algorithms.sequential.recommender.SequentialRecommender`'s scoring methods call these.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from training.algorithms.sequential.network import SequenceNetwork
from training.algorithms.sequential.windows import UserSequences, last_positions
from training.interactions import InteractionData

if TYPE_CHECKING:
    from training.algorithms.sequential.recommender import SequentialRecommender

SCORE_CHUNK = 4096  # rows per forward pass when scoring

# Last states (b, d), the item table and the domain → (b, m) scores.
StateScorer = Callable[[torch.Tensor, torch.Tensor, int | None], torch.Tensor]


def latest_histories(
    sequences: UserSequences, network: SequenceNetwork, max_length: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """What scoring reads of each user in ``sequences``: their last ``max_length`` items as tokens
    ``(n_users, max_length)``, and with a content prior the content of their items before those ``(n_users, r)``
    (``None`` without one)."""
    tokens = torch.from_numpy(sequences.last_tokens(max_length)).to(device)
    prior = network.prior
    if prior is None:
        return tokens, None
    return tokens, sequences.sums_before(prior.items[1:], sequences.window_starts(max_length))


def score_tokens(
    network: SequenceNetwork,
    tokens: torch.Tensor,
    *,
    output: tuple[StateScorer, int],
    autocast: contextlib.AbstractContextManager[Any],
    device: torch.device,
    domains: torch.Tensor | None = None,
    offsets: torch.Tensor | None = None,
) -> torch.Tensor:
    """Scores ``(n, width)`` float32 on the CPU after right-padded ``tokens`` ``(n, L)``, ``SCORE_CHUNK`` rows per
    forward pass under ``autocast``; row ``r`` under domain ``domains[r]`` if given, its content prior also reading
    ``offsets[r]`` (:meth:`ContentPrior.queries`). ``output``: what scores the last states, and its ``width``."""
    if network.training:  # switching walks every submodule: a fifth of a millisecond per request when served
        network.eval()
    scorer, width = output
    scores = torch.empty(len(tokens), width, device=device)
    rows = torch.arange(len(tokens), device=device)
    groups: list[tuple[int | None, torch.Tensor]] = [(None, rows)]
    if domains is not None:
        groups = [(int(domain), rows[domains == domain]) for domain in torch.unique(domains)]
    with autocast:
        table = network.scoring_table()
        for domain, group in groups:
            for chunk in group.split(SCORE_CHUNK):
                last = last_positions(tokens[chunk])
                # The padding after every row's latest item changes no state before it: it is not computed.
                rows = tokens[chunk][:, : int(last.max()) + 1]
                hidden = network.hidden(rows, table, domain, None if offsets is None else offsets[chunk])
                scores[chunk] = scorer(hidden[torch.arange(len(chunk), device=device), last], table, domain).float()
    return scores.cpu()


def new_item_output(
    network: SequenceNetwork, features: torch.Tensor, device: torch.device
) -> tuple[StateScorer, int] | None:
    """The ``output`` of :func:`score_tokens` that scores items added after training, from their raw content
    ``features`` ``(n_new, f)``: what the network gives an item without training events of that content
    (:meth:`SequenceNetwork.new_item_vectors`). ``None`` for a network that reads no content of its items."""
    if not network.places_new_items():
        return None
    vectors, bias = network.new_item_vectors(features.to(device))

    def new_items(hidden: torch.Tensor, table: torch.Tensor, domain: int | None) -> torch.Tensor:
        return hidden @ vectors.T.to(hidden.dtype) + bias.to(hidden.dtype)

    return new_items, len(bias)


class HistoryScorer:
    """A sequential model scoring after given histories (:meth:`SequentialRecommender.after_history`)."""

    def __init__(self, model: SequentialRecommender, histories: torch.Tensor, offsets: torch.Tensor | None) -> None:
        self.model, self.histories, self.offsets = model, histories, offsets
        self.n_users, self.n_items = model.n_users, model.n_items

    @classmethod
    def after(cls, model: SequentialRecommender, history: InteractionData) -> HistoryScorer:
        """``model`` scoring after each user's events in ``history``: same indexes as its training, in time order."""
        if history.n_users != model.n_users or history.n_items != model.n_items:
            raise ValueError(
                f"history is {history.n_users} users × {history.n_items} items, the model {model.n_users} × "
                f"{model.n_items}"
            )
        sequences = UserSequences.from_data(history)
        max_length = model.hparams["max_length"]
        return cls(model, *latest_histories(sequences, model._network, max_length, model.device))

    @torch.no_grad()
    def score(self, users: Sequence[int] | np.ndarray, **kwargs: Any) -> torch.Tensor:
        """Every item's score for each user after its history: ``(len(users), n_items)``; ``kwargs`` as the
        model's :meth:`score` takes them (STAR's ``domain``)."""
        users_tensor = self.model.users_tensor(users)
        return self.model._score_users(users_tensor, self.histories, self.offsets, **kwargs)
