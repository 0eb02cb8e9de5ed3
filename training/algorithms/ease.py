"""EASE: a closed-form linear item-item model (Steck, "Embarrassingly Shallow Autoencoders", WWW 2019)."""

from collections.abc import Sequence

import numpy as np
import torch

from training.algorithms.base import (
    EpochReport,
    ProgressCallback,
    TrainingMatrixRecommender,
    no_progress,
    validation_scores,
)
from training.algorithms.params import log_range
from training.algorithms.registry import register
from training.interactions import HeldOut, InteractionData

# Dense user rows materialised at once while summing the Gram matrix (64 MiB of float32).
DENSE_BLOCK_ENTRIES = 1 << 24


@register
class EASE(TrainingMatrixRecommender):
    name = "ease"
    label = "EASE"
    family = "baseline"
    description = (
        "Learns an item × item weight matrix in closed form (ridge regression of each item on all others, "
        "no self-weight). Memory grows with the square of the catalogue (about 32 bytes × items²: 12 GiB at 20,000 "
        "items); a run checks first that its worker has it."
    )
    params = (
        log_range("l2", float, 250.0, "Ridge penalty λ added to the Gram matrix's diagonal.", (1e-6, 1e9), (1.0, 1e5)),
    )

    def fit(
        self, data: InteractionData, progress: ProgressCallback = no_progress, *, validation: HeldOut | None = None
    ) -> None:
        self.keep_training_matrix(data)
        # Stored as float16 (half the artifact; the benchmark ease_storage measures the quality kept), and held
        # rounded to it from the start so the evaluated model is the one stored and served.
        self.weights = self._solve().half().float()
        progress(EpochReport(phase="fit", step=1, total=1, validation=validation_scores(self, data, validation)))

    def memory_needed(self, n_users: int, n_items: int) -> int | None:
        """The Gram matrix, its Cholesky factor and inverse in float64 and the weights: about 32 bytes × items²
        (measured)."""
        return 32 * n_items**2

    def _solve(self) -> torch.Tensor:
        """``B = −P / diag(P)`` with ``P = (XᵀX + λI)⁻¹`` and ``diag(B) = 0``: float32 ``(n_items, n_items)``.

        Inverted in float64: in float32 a catalogue of thousands of items loses several digits of ``P``.
        """
        gram = self._gram().double()
        gram.diagonal().add_(self.hparams["l2"])
        precision = torch.cholesky_inverse(torch.linalg.cholesky(gram))
        weights = precision / -precision.diagonal()[None, :]
        weights.diagonal().zero_()
        return weights.float()

    def _gram(self) -> torch.Tensor:
        """``XᵀX``: float32 ``(n_items, n_items)`` co-occurrence counts (exact below 2²⁴), summed over user blocks."""
        gram = torch.zeros(self.n_items, self.n_items, device=self.device)
        block_size = max(1, DENSE_BLOCK_ENTRIES // max(self.n_items, 1))
        for start in range(0, self.n_users, block_size):
            users = torch.arange(start, min(start + block_size, self.n_users), device=self.device)
            rows = self.training_rows(users)
            gram.addmm_(rows.T, rows)
        return gram

    def score(self, users: Sequence[int] | np.ndarray) -> torch.Tensor:
        """``x_u B``: float32 ``(len(users), n_items)``."""
        rows = self.training_rows(self.users_tensor(users))
        return (rows @ self.weights).cpu()

    explainable = True

    def similar_items(self, items: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Row ``B[i]``: how much having item ``i`` raises every other item's score, ``(len(items), n_items)``."""
        return self.weights[torch.as_tensor(np.asarray(items), dtype=torch.long, device=self.device)].cpu()

    def explain(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``B[i, j]`` for each recommended ``j`` and history item ``i``: the terms of ``x_u B``."""
        rows = torch.as_tensor(np.asarray(history), dtype=torch.long, device=self.device)
        columns = torch.as_tensor(np.asarray(items), dtype=torch.long, device=self.device)
        return self.weights[rows][:, columns].T.cpu().numpy()

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {"weights": self.weights.half()} | self.training_matrix_tensors()

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.weights = tensors["weights"].float().to(self.device)
        self.load_training_matrix(tensors)
