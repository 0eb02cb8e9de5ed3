"""EASE for a scenario group, adapted to each member (transfer without order).

One EASE model is fitted on the union of the members' events and serves each member in its own item slice. Each item
belongs to the member most of its training events fall in (``InteractionData.domains``; events in no member are a
domain after the members'); a member's items are its slice. The member adaptation is one knob per member, its
*transfer* ``t`` from 0 to 1, chosen on the member's validation events: the columns of the member's items are the
EASE regression of each item on every other item, with the penalty ``λ`` on weights from the member's own items and
``λ / t`` on weights from the other members' items. ``t = 1`` is the plain model of the union; ``t = 0`` leaves no
weight from another member's items, which is EASE fitted on the member alone (with the same ``λ``). Down-weighting
the others' items by ``t`` is the same as up-weighting the member's own interactions by ``1 / √t``.

A user's scores read their whole history in the group (all members' items), as every group run does; a member's
scores rank only its own items (the others are ``-inf``). Without a domain, each item is scored by its own member's
columns.

The closed form ``P = (XᵀX + Λ)⁻¹`` is solved in the smaller of the two spaces: items (``n_items``² Gram matrix)
when the users outnumber the items, else users (Woodbury's identity: ``P = Λ⁻¹ − Λ⁻¹Xᵀ(I + XΛ⁻¹Xᵀ)⁻¹XΛ⁻¹``),
where trying every transfer costs a users² solve each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from training.algorithms.base import DomainNamesMixin, EpochReport, ProgressCallback, no_progress, validation_scores
from training.algorithms.ease import EASE
from training.algorithms.registry import register
from training.evaluation.ranking import mean_ndcg
from training.interactions import HeldOut, InteractionData

# The transfers tried on each member's validation events, from the union's model to the member alone.
TRANSFERS = (1.0, 0.5, 0.25, 0.125, 1 / 16, 1 / 64, 1 / 256, 0.0)


@register
class AdaptedEASE(DomainNamesMixin, EASE):
    name = "adapted_ease"
    label = "EASE adapted per member (scenario group)"
    family = "multi_scenario"
    description = (
        "EASE on a scenario group's events, serving each member in its own items. Per member, how much the other "
        "members' items count (from the whole group's model to the member alone) is chosen on its validation events."
    )
    params = EASE.params
    uses_domains: ClassVar[bool] = True

    def __init__(self, params: Any = None, *, device: str | torch.device = "cpu", seed: int = 0) -> None:
        super().__init__(params, device=device, seed=seed)
        self.item_domains = torch.zeros(0, dtype=torch.long, device=self.device)
        self.transfers = torch.ones(1, device=self.device)

    @property
    def n_domains(self) -> int:
        return len(self.transfers)

    # -- fitting

    def fit(
        self, data: InteractionData, progress: ProgressCallback = no_progress, *, validation: HeldOut | None = None
    ) -> None:
        self.keep_training_matrix(data)
        domains = np.zeros(data.n_events, dtype=np.int64) if data.domains is None else data.domains.astype(np.int64)
        n_domains = max(int(domains.max()) + 1 if len(domains) else 1, len(self.domain_names or ()))
        self.item_domains = torch.from_numpy(item_domains(data.items, domains, data.n_items, n_domains))
        self.item_domains = self.item_domains.to(self.device)
        solver = self._solver()
        weights = torch.zeros(self.n_items, self.n_items, device=self.device)
        transfers = []
        for domain in range(n_domains):
            columns = torch.nonzero(self.item_domains == domain)[:, 0]
            transfer = self._chosen_transfer(solver, columns, data, validation)
            if len(columns):
                weights[:, columns] = solver.weight_columns(columns, transfer).float()
            transfers.append(transfer)
            progress(EpochReport(phase="fit", step=domain + 1, total=n_domains + 1, validation={}))
        self.transfers = torch.tensor(transfers, device=self.device)
        self.weights = weights.half().float()  # stored as float16, as EASE
        measured = validation_scores(self, data, validation)
        if measured:
            measured |= {f"transfer_{domain + 1}": value for domain, value in enumerate(transfers)}
        progress(EpochReport(phase="fit", step=n_domains + 1, total=n_domains + 1, validation=measured))

    def memory_needed(self, n_users: int, n_items: int) -> int | None:
        """About 56 bytes × items² solved in the items' space; in the users' (fewer users than items), the
        weights and dense user rows and systems: 32 × items² + 32 × users² + 16 × users × items (measured)."""
        if n_users >= n_items:
            return 56 * n_items**2
        return 32 * n_items**2 + 32 * n_users**2 + 16 * n_users * n_items

    def _solver(self) -> RidgeSolver:
        """The closed form in the smaller space: the users' when there are fewer users than items."""
        if self.n_users < self.n_items:
            return UserSpaceSolver(self._rows(torch.arange(self.n_users, device=self.device)), self.hparams["l2"])
        return ItemSpaceSolver(self._gram().double(), self._rows, self.hparams["l2"])

    def _rows(self, users: torch.Tensor) -> torch.Tensor:
        """Binary training rows of ``users``: float64 ``(len(users), n_items)``."""
        return self.training_rows(users).double()

    def _chosen_transfer(
        self, solver: RidgeSolver, columns: torch.Tensor, data: InteractionData, validation: HeldOut | None
    ) -> float:
        """The transfer with the best NDCG@10 on the member's validation pairs (ties: the larger transfer); 1 when
        the member has none."""
        held_out = member_held_out(validation, columns.cpu().numpy()) if validation is not None else None
        if held_out is None or held_out.n_pairs == 0 or len(columns) == 0:
            return 1.0
        scored = []
        for transfer in TRANSFERS:
            scorer = _ColumnScorer(solver.member_scorer(columns, transfer), columns, self.n_items)
            scored.append((mean_ndcg(scorer, data, held_out, k=10), transfer))
        return max(scored, key=lambda pair: (pair[0], pair[1]))[1]

    # -- scoring

    def score(self, users: Sequence[int] | np.ndarray, domain: int | None = None) -> torch.Tensor:
        """``x_u B`` over every item, or over the member ``domain``'s items (the others ``-inf``)."""
        rows = self.training_rows(self.users_tensor(users))
        return self.scores_from_rows(rows, domain=domain).cpu()

    def scores_from_rows(self, rows: torch.Tensor, *, domain: int | None = None) -> torch.Tensor:
        """Scores of binary history rows ``(n, n_items)``, on the model's device; ``domain`` as in :meth:`score`."""
        return self.within_member(rows @ self.weights, domain=domain)

    def within_member(self, scores: torch.Tensor, *, domain: int | None = None) -> torch.Tensor:
        """``scores`` ``(..., n_items)`` with the items outside the member ``domain`` at ``-inf`` (in place)."""
        if domain is not None:
            scores[..., self.item_domains != self._checked_domain(domain)] = -torch.inf
        return scores

    def _checked_domain(self, domain: int) -> int:
        if not 0 <= int(domain) < self.n_domains:
            raise ValueError(f"domain must be from 0 to {self.n_domains - 1}, got {domain}")
        return int(domain)

    def member_transfers(self) -> dict[str, float]:
        """Each member's chosen transfer, by its name (by its domain index when unnamed)."""
        names = self.domain_names or [str(domain) for domain in range(self.n_domains)]
        return {name: float(value) for name, value in zip(names, self.transfers.tolist(), strict=False)}

    # -- state

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return super().state_tensors() | {"item_domains": self.item_domains, "transfers": self.transfers}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        super().load_state_tensors(tensors)
        self.item_domains = tensors["item_domains"].long().to(self.device)
        self.transfers = tensors["transfers"].float().to(self.device)


def item_domains(items: np.ndarray, domains: np.ndarray, n_items: int, n_domains: int) -> np.ndarray:
    """``(n_items,)`` int64: the domain most of each item's events ``(n,)`` fall in (ties: the lower index); -1 for
    an item without events, which belongs to no member."""
    counts = np.bincount(items * n_domains + domains, minlength=n_items * n_domains).reshape(n_items, n_domains)
    return np.where(counts.sum(1) > 0, counts.argmax(1), -1).astype(np.int64)


def member_held_out(held_out: HeldOut, columns: np.ndarray) -> HeldOut:
    """The pairs of ``held_out`` on the items ``columns``."""
    users, items = held_out.pairs()
    mine = np.isin(items, columns)
    return HeldOut.from_pairs(held_out.n_users, held_out.n_items, users[mine], items[mine])


class RidgeSolver:
    """EASE's closed form for some columns ``A`` with the penalty ``λ`` on weights from those columns' items and
    ``λ / transfer`` on the others': :meth:`member_scorer` scores training users under ``B[:, A]`` (what choosing a
    transfer on validation needs), :meth:`weight_columns` gives ``B[:, A]`` itself."""

    def __init__(self, n_items: int, l2: float, device: torch.device) -> None:
        self.n_items, self.l2, self.device = n_items, l2, device

    def member_scorer(self, columns: torch.Tensor, transfer: float) -> Callable[[torch.Tensor], torch.Tensor]:
        """``users ↦ x_u B[:, A]`` up to the training items' own terms (ranking masks those): ``(n, len(A))``."""
        raise NotImplementedError

    def precision_columns(self, columns: torch.Tensor, transfer: float) -> torch.Tensor:
        """``P[:, A]``: float64 ``(n_items, len(A))``."""
        raise NotImplementedError

    def weight_columns(self, columns: torch.Tensor, transfer: float) -> torch.Tensor:
        """``B[:, A] = −P[:, A] / diag(P)[A]`` with ``B[j, j] = 0``: float64 ``(n_items, len(columns))``."""
        precision = self.precision_columns(columns, transfer)
        own = (columns, torch.arange(len(columns), device=self.device))
        weights = precision / -precision[own]
        weights[own] = 0.0
        return weights

    def inverse_penalties(self, columns: torch.Tensor, transfer: float) -> torch.Tensor:
        """``diag(Λ⁻¹)``: ``1 / λ`` for the columns' items, ``transfer / λ`` for the others, float64 ``(n_items,)``."""
        inverse = torch.full((self.n_items,), transfer / self.l2, dtype=torch.float64, device=self.device)
        inverse[columns] = 1.0 / self.l2
        return inverse


class ItemSpaceSolver(RidgeSolver):
    """Solves in the items' space: one Cholesky factorisation of the ``n_items``² penalised Gram matrix (at
    transfer 0, of the columns' own block) per transfer. ``rows`` gives users' binary rows, float64."""

    def __init__(self, gram: torch.Tensor, rows: Callable[[torch.Tensor], torch.Tensor], l2: float) -> None:
        super().__init__(gram.shape[0], l2, gram.device)
        self.gram, self.rows = gram, rows  # float64 (n_items, n_items)

    def precision_columns(self, columns: torch.Tensor, transfer: float) -> torch.Tensor:
        if transfer == 0.0:  # no weight from the other items: the columns' own block alone
            block = self.gram[columns][:, columns]
            block.diagonal().add_(self.l2)
            precision = torch.zeros(self.n_items, len(columns), dtype=torch.float64, device=self.device)
            precision[columns] = torch.cholesky_inverse(torch.linalg.cholesky(block))
            return precision
        penalised = self.gram + torch.diag(1.0 / self.inverse_penalties(columns, transfer))
        unit = torch.zeros(self.n_items, len(columns), dtype=torch.float64, device=self.device)
        unit[columns, torch.arange(len(columns), device=self.device)] = 1.0
        return torch.cholesky_solve(unit, torch.linalg.cholesky(penalised))

    def member_scorer(self, columns: torch.Tensor, transfer: float) -> Callable[[torch.Tensor], torch.Tensor]:
        precision = self.precision_columns(columns, transfer)
        diagonal = precision[columns, torch.arange(len(columns), device=self.device)]
        return lambda users: -(self.rows(users) @ precision) / diagonal


class UserSpaceSolver(RidgeSolver):
    """Solves in the users' space (Woodbury): one Cholesky factorisation of an ``n_users``² matrix per transfer, with
    ``K = I + X Λ⁻¹ Xᵀ``, ``X P[:, A] = K⁻¹ X_A / λ`` and ``P[:, A] = Λ⁻¹[:, A] − Λ⁻¹ Xᵀ K⁻¹ X_A / λ``."""

    def __init__(self, rows: torch.Tensor, l2: float) -> None:
        super().__init__(rows.shape[1], l2, rows.device)
        self.rows = rows  # float64 (n_users, n_items)
        self.user_gram = rows @ rows.T

    def _solved(self, columns: torch.Tensor, transfer: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``X_A`` and ``K⁻¹ X_A``, float64 ``(n_users, len(columns))``."""
        own = self.rows[:, columns]
        system = (transfer * self.user_gram + (1.0 - transfer) * (own @ own.T)) / self.l2
        system.diagonal().add_(1.0)
        return own, torch.cholesky_solve(own, torch.linalg.cholesky(system))

    def member_scorer(self, columns: torch.Tensor, transfer: float) -> Callable[[torch.Tensor], torch.Tensor]:
        own, solved = self._solved(columns, transfer)
        diagonal = 1.0 / self.l2 - (own * solved).sum(0) / self.l2**2
        return lambda users: -(solved[users] / self.l2) / diagonal

    def precision_columns(self, columns: torch.Tensor, transfer: float) -> torch.Tensor:
        _, solved = self._solved(columns, transfer)
        inverse = self.inverse_penalties(columns, transfer)
        # The largest product of the fit, (n_items, n_users) × (n_users, len(A)), in float32: the weights are
        # stored in float16.
        spread = (self.rows.T.float() @ solved.float()).double()
        precision = -(inverse[:, None] * spread) / self.l2
        precision[columns, torch.arange(len(columns), device=self.device)] += 1.0 / self.l2
        return precision


class _ColumnScorer:
    """Training users' scores under one member's columns (the other items ``-inf``), for ranking on validation."""

    def __init__(self, member_scorer: Callable[[torch.Tensor], torch.Tensor], columns: torch.Tensor, n_items: int):
        self.member_scorer, self.columns, self.n_items = member_scorer, columns, n_items

    def score(self, users: np.ndarray) -> torch.Tensor:
        users_tensor = torch.as_tensor(np.asarray(users), device=self.columns.device)
        scores = torch.full((len(users_tensor), self.n_items), -torch.inf, device=self.columns.device)
        scores[:, self.columns] = self.member_scorer(users_tensor).float()
        return scores.cpu()
