"""Implicit alternating least squares (Hu, Koren & Volinsky, "Collaborative Filtering for Implicit Feedback
Datasets", ICDM 2008), with exact per-user and per-item solves batched in PyTorch."""

import torch

from training.algorithms.base import DotProductRecommender, EarlyStopping, ProgressCallback, no_progress
from training.algorithms.params import Param, early_stopping_patience, log_range
from training.algorithms.registry import register
from training.interactions import HeldOut, InteractionData, csr_row_block

# Float entries of the per-row normal equations held at once, (rows, factors, factors): 64 MiB.
SOLVE_BLOCK_ENTRIES = 1 << 24


@register
class IALS(DotProductRecommender):
    name = "ials"
    label = "iALS"
    family = "baseline"
    description = (
        "Matrix factorisation of the binary interaction matrix with confidence 1 + alpha on observed "
        "pairs and 1 elsewhere, fitted by alternating exact least-squares solves. Early-stops on validation "
        "NDCG@10 when a validation set is given."
    )
    params = (
        log_range("factors", int, 64, "Dimensions of user and item vectors.", (1, 1024), (16, 256)),
        log_range("regularization", float, 50.0, "L2 penalty λ on every factor vector.", (0.0, 1e6), (0.1, 1000.0)),
        log_range("alpha", float, 10.0, "Extra confidence of an observed pair.", (0.0, 1e6), (0.1, 100.0)),
        Param("iterations", int, 15, help="Most alternations (users then items).", minimum=1, maximum=500),
        early_stopping_patience(default=3, maximum=100, steps="Iterations"),
    )
    user_tensor, item_tensor = "user_factors", "item_factors"

    def fit(
        self, data: InteractionData, progress: ProgressCallback = no_progress, *, validation: HeldOut | None = None
    ) -> None:
        self.n_users, self.n_items = data.n_users, data.n_items
        # Only item factors need a start: each iteration solves users first. Starting much smaller than 0.1
        # lets a large λ shrink every factor towards zero in the first solves.
        start = torch.empty(self.n_items, self.hparams["factors"], device=self.device)
        self.item_factors = start.normal_(0, 0.1, generator=self.seeded_generator())
        by_user, by_item = data.csr().to(self.device), data.csr_by_item().to(self.device)
        stopper = EarlyStopping(self, data, validation, patience=self.hparams["early_stopping_patience"])
        iterations = self.hparams["iterations"]
        for iteration in range(1, iterations + 1):
            self.user_factors = self._solve(by_user, self.item_factors)
            self.item_factors = self._solve(by_item, self.user_factors)
            stopper.report(progress, phase="train", step=iteration, total=iterations)
            if stopper.should_stop:
                break
        stopper.restore_best()

    def _solve(self, matrix: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
        """New factors ``(n_rows, f)`` for the rows of binary CSR ``matrix`` ``(n_rows, n_fixed)``, others ``fixed``.

        Row ``u`` solves ``(FᵀF + α Σ_{i∈u} f_i f_iᵀ + λI) x_u = (1 + α) Σ_{i∈u} f_i``: the normal
        equations of ``Σ_i c_ui (p_ui − x_u·f_i)² + λ‖x_u‖²`` with ``c = 1 + α`` where ``p = 1``.
        """
        alpha, size = self.hparams["alpha"], fixed.shape[1]
        base = fixed.T @ fixed + self.hparams["regularization"] * torch.eye(size, device=self.device)
        outer = (fixed[:, :, None] * fixed[:, None, :]).reshape(len(fixed), size * size)  # (n_fixed, f²)
        n_rows = matrix.shape[0]
        block = max(1, SOLVE_BLOCK_ENTRIES // (size * size))
        solutions = []
        for start in range(0, n_rows, block):
            rows = csr_row_block(matrix, start, min(start + block, n_rows))
            lhs = base + alpha * (rows @ outer).reshape(-1, size, size)
            rhs = (1.0 + alpha) * (rows @ fixed)
            solutions.append(torch.cholesky_solve(rhs[:, :, None], torch.linalg.cholesky(lhs))[:, :, 0])
        return torch.cat(solutions) if solutions else fixed.new_zeros(0, size)
