"""STAR: one model for several domains (scenarios) with a star-topology network (Sheng et al., CIKM 2021).

A SASRec-like encoder whose attention output projections and feed-forward layers have weights
``W ⊙ W_d`` and biases ``b + b_d`` (shared ⊙ domain ``d``), whose normalisations are partitioned
(``γ ⊙ γ_d``, ``β + β_d``), and whose output adds a small auxiliary domain network and a per-domain
item bias to the shared item-embedding logits. The query/key/value projections, positions and item
embeddings are shared.

Every event carries a domain (``InteractionData.domains``; none means one domain). A training
position is labelled by the domain of the event it predicts, and the whole prefix is read by that
domain's network: each batch is encoded once per domain present among its targets. ``score`` takes
a ``domain``; by default each user is scored in their most frequent training domain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.algorithms.base import DomainNamesMixin, ProgressCallback, no_progress
from training.algorithms.params import Param
from training.algorithms.registry import register
from training.algorithms.sequential import (
    HEADS,
    INIT_STD,
    DomainLinear,
    ItemEmbedding,
    SequenceNetwork,
    SequentialRecommender,
    TransformerEncoder,
    Windows,
    check_heads,
    sequential_params,
)
from training.interactions import HeldOut, InteractionData

AUXILIARY_SIZE = Param(
    "auxiliary_size", int, 16, help="Width of the auxiliary domain network.", minimum=1, maximum=1024
)


class StarNetwork(SequenceNetwork):
    """Shared item embeddings, a star-topology encoder, and per-domain output terms.

    ``logits = h · e_i + a(h, d) · x_i + c_{d,i}`` for domain ``d``: the shared dot product, the
    auxiliary network ``a`` (a small MLP on the state and a learned domain vector) against auxiliary
    item vectors ``x_i``, and a per-domain item bias ``c_{d,i}``.
    """

    def __init__(self, items: ItemEmbedding, encoder: TransformerEncoder, n_domains: int, auxiliary_size: int):
        super().__init__(items, encoder)
        size, n_tokens = items.table.shape[1], items.table.shape[0]
        self.domain_vectors = nn.Parameter(torch.empty(n_domains, auxiliary_size).normal_(0.0, INIT_STD))
        self.auxiliary_hidden = DomainLinear(size + auxiliary_size, auxiliary_size)
        self.auxiliary_items = nn.Parameter(torch.empty(n_tokens, auxiliary_size).normal_(0.0, INIT_STD))
        self.domain_item_bias = nn.Parameter(torch.zeros(n_domains, n_tokens))

    @property
    def n_domains(self) -> int:
        return self.domain_vectors.shape[0]

    def logits(
        self, hidden: torch.Tensor, table: torch.Tensor, domain: int | None = None, kept: torch.Tensor | None = None
    ) -> torch.Tensor:
        shared = super().logits(hidden, table, kept=kept)
        if domain is None:
            return shared
        domain_vector = self.domain_vectors[domain].expand(len(hidden), -1)
        states = self.states(hidden)
        auxiliary = F.relu(self.auxiliary_hidden(torch.cat([states, domain_vector.to(hidden.dtype)], dim=1)))
        per_item = auxiliary @ self.auxiliary_items[1:].T + self.domain_item_bias[domain, 1:]
        return shared + (per_item if kept is None else per_item * kept)

    def item_indexed(self) -> dict[str, int]:
        return super().item_indexed() | {"auxiliary_items": 0, "domain_item_bias": 1}

    @torch.no_grad()
    def forget_items(self, items: torch.Tensor) -> None:
        """Their free embeddings, auxiliary vectors and domain biases."""
        super().forget_items(items)
        self.auxiliary_items[1:][items] = 0.0
        self.domain_item_bias[:, 1:][:, items] = 0.0


@register
class STAR(DomainNamesMixin, SequentialRecommender):
    name = "star"
    label = "STAR (multi-scenario Transformer)"
    family = "multi_scenario"
    description = (
        "One SASRec-like model over several scenarios (domains): shared attention and item embeddings, with "
        "star-topology layers (shared ⊙ domain weights), partitioned normalisation and an auxiliary domain network. "
        "Scores each user in a chosen domain (default: their most frequent one)."
    )
    params = sequential_params(architecture=(HEADS, AUXILIARY_SIZE))
    architecture_params = ("embedding_size", "layers", "heads", "max_length", "auxiliary_size")
    encoder_class = TransformerEncoder
    uses_domains: ClassVar[bool] = True

    def __init__(self, params: Any = None, *, device: str | torch.device = "cpu", seed: int = 0) -> None:
        super().__init__(params, device=device, seed=seed)
        self.n_domains = 1
        self.user_domains = torch.zeros(0, dtype=torch.long, device=self.device)
        self.domain_events = torch.ones(1, dtype=torch.long, device=self.device)
        self._domains_by_event = torch.zeros(0, dtype=torch.long, device=self.device)

    def _check_architecture(self, hparams: dict[str, Any]) -> None:
        check_heads(hparams)

    def _build_network(self, n_items: int, feature_size: int) -> StarNetwork:
        size, n_domains = self.hparams["embedding_size"], self.n_domains
        encoder = TransformerEncoder(
            size, self.hparams["layers"], self.hparams["heads"], self.hparams["dropout"], self.hparams["max_length"],
            n_domains,
        )  # fmt: skip
        items = self._item_embedding(n_items, size, feature_size)
        return StarNetwork(items, encoder, n_domains, self.hparams["auxiliary_size"])

    # -- fitting

    def fit(
        self, data: InteractionData, progress: ProgressCallback = no_progress, *, validation: HeldOut | None = None
    ) -> None:
        domains = np.zeros(data.n_events, dtype=np.int64) if data.domains is None else data.domains.astype(np.int64)
        needed = max(int(domains.max()) + 1 if len(domains) else 1, len(self.domain_names or ()))
        if self.from_parent and needed > self.n_domains:
            raise ValueError(
                f"the data has {needed} domains, but the model started from its parent with {self.n_domains}"
            )
        if not self.from_parent:
            self.n_domains = needed
        counts = np.bincount(data.users * self.n_domains + domains, minlength=data.n_users * self.n_domains)
        counts = counts.reshape(data.n_users, self.n_domains)
        self.domain_events = torch.from_numpy(counts.sum(0)).to(self.device)
        overall = int(np.argmax(counts.sum(0)))
        user_domains = np.where(counts.sum(1) > 0, counts.argmax(1), overall)  # ties: the lowest domain index
        self.user_domains = torch.from_numpy(user_domains.astype(np.int64)).to(self.device)
        self._domains_by_event = torch.from_numpy(domains).to(self.device)
        super().fit(data, progress, validation=validation)

    def _batch_loss(self, batch: Windows) -> tuple[torch.Tensor, int]:
        """Summed over the domains of the batch's targets: each domain's network reads its targets' windows."""
        trained = batch.target_events >= 0
        target_domains = self._domains_by_event[batch.target_events.clamp(min=0)]
        items = self._item_tables()
        total, count = torch.zeros((), device=self.device), 0
        for domain in torch.unique(target_domains[trained]).tolist():
            mine = trained & (target_domains == domain)
            rows = mine.any(1)
            part = batch.rows(rows)
            hidden = self._hidden(part, items.table, domain)[mine[rows]]
            targets = self._items_by_event[batch.target_events[mine]]
            total = total + self._next_item_loss(hidden, targets, items, domain) * len(targets)
            count += len(targets)
        return total / max(count, 1), count

    # -- scoring

    @torch.no_grad()
    def score(self, users: Sequence[int] | np.ndarray, domain: int | None = None) -> torch.Tensor:
        """Every item's score for each user in ``domain`` (default: the user's most frequent training domain)."""
        return self._score_users(self.users_tensor(users), self.histories, self.history_offsets, domain=domain)

    def _score_users(
        self, users: torch.Tensor, histories: torch.Tensor, offsets: torch.Tensor | None, **kwargs: Any
    ) -> torch.Tensor:
        domain = kwargs.get("domain")
        domains = self.user_domains[users] if domain is None else torch.full_like(users, self._checked_domain(domain))
        return self._score_tokens(histories[users], domains, None if offsets is None else offsets[users])

    @torch.no_grad()
    def score_sequences(self, item_index_lists: Sequence[Sequence[int]], domain: int | None = None) -> torch.Tensor:
        """Scores after each history in ``domain`` (default: the domain with the most training events)."""
        return self._score_tokens(*self._sequence_inputs(item_index_lists, domain=domain))

    def _sequence_inputs(
        self, item_index_lists: Sequence[Sequence[int]], **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """As a SASRec's, each row under ``kwargs["domain"]`` (default: the domain with the most training events)."""
        domain = kwargs.get("domain")
        domain = int(torch.argmax(self.domain_events)) if domain is None else self._checked_domain(domain)
        tokens, _, offsets = super()._sequence_inputs(item_index_lists)
        return tokens, torch.full((len(tokens),), domain, device=self.device), offsets

    def _checked_domain(self, domain: int) -> int:
        if not 0 <= int(domain) < self.n_domains:
            raise ValueError(f"domain must be from 0 to {self.n_domains - 1}, got {domain}")
        return int(domain)

    # -- state

    def user_row_tensors(self) -> tuple[str, ...]:
        return (*super().user_row_tensors(), "user_domains")

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return super().state_tensors() | {"user_domains": self.user_domains, "domain_events": self.domain_events}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.n_domains = int(tensors["network.domain_vectors"].shape[0])
        self.user_domains = tensors["user_domains"].long().to(self.device)
        self.domain_events = tensors["domain_events"].long().to(self.device)
        network_tensors = {
            name: value for name, value in tensors.items() if name not in ("user_domains", "domain_events")
        }
        super().load_state_tensors(network_tensors)

    # -- transfer

    def initialize_from(self, parent: Any, item_map: np.ndarray) -> None:
        """Start from a SASRec or STAR run: shared weights are copied, and every domain starts as the shared one.

        The number of domains is the parent's (a STAR parent) or the number of names given by
        :meth:`set_domain_names` (at least one).
        """
        self.n_domains = max(getattr(parent, "n_domains", 1), len(self.domain_names or ()), 1)
        super().initialize_from(parent, item_map)
