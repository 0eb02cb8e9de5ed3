"""Biased matrix factorisation for explicit ratings (the SVD-style model of Koren, Bell & Volinsky, "Matrix
Factorization Techniques for Recommender Systems", IEEE Computer 2009), fitted by alternating least squares
with the count-weighted L2 penalty of Zhou et al. ("Large-scale Parallel Collaborative Filtering for the
Netflix Prize", AAIM 2008). Each alternation is one batched exact solve over users, then one over items."""

from collections.abc import Sequence

import numpy as np
import torch

from training.algorithms.base import EarlyStopping, ProgressCallback
from training.algorithms.params import Param, early_stopping_patience, log_range
from training.algorithms.ratings import RatedPairs, RatingRecommender, rating_model_description
from training.algorithms.registry import register
from training.interactions import csr_row_block, csr_tensor, ratings_clipped

# Float entries of the per-row normal equations held at once, (rows, factors + 1, factors + 1): 64 MiB.
SOLVE_BLOCK_ENTRIES = 1 << 24


@register
class BiasedMF(RatingRecommender):
    name = "biased_mf"
    label = "Biased MF (ratings)"
    family = "baseline"
    description = rating_model_description(
        interaction="user vector · item vector",
        fitting="fitted to the rated pairs by alternating least squares with an L2 penalty weighted by each row's "
        "number of ratings",
    )
    params = (
        log_range("factors", int, 20, "Dimensions of user and item vectors.", (1, 512), (4, 128)),
        log_range(
            "regularization",
            float,
            0.12,
            "L2 penalty λ on each vector and bias, times the row's number of ratings.",
            (1e-4, 100.0),
            (0.01, 1.0),
        ),
        Param("iterations", int, 15, help="Most alternations (users then items).", minimum=1, maximum=200),
        early_stopping_patience(default=2, maximum=100, steps="Iterations", metric="RMSE"),
    )

    def fit_ratings(self, pairs: RatedPairs, stopper: EarlyStopping, progress: ProgressCallback) -> None:
        centred = torch.from_numpy(pairs.centred).to(self.device)
        by_user = _Rows.of(pairs.users, pairs.items, centred, (self.n_users, self.n_items), self.device)
        by_item = _Rows.of(pairs.items, pairs.users, centred, (self.n_items, self.n_users), self.device)
        start = torch.empty(self.n_items, self.hparams["factors"], device=self.device)
        self.item_factors = start.normal_(0, 0.1, generator=self.seeded_generator())
        self.item_bias = torch.zeros(self.n_items, device=self.device)
        iterations = self.hparams["iterations"]
        for iteration in range(1, iterations + 1):
            self.user_factors, self.user_bias = self._solve(by_user, self.item_factors, self.item_bias)
            self.item_factors, self.item_bias = self._solve(by_item, self.user_factors, self.user_bias)
            stopper.report(progress, phase="train", step=iteration, total=iterations)
            if stopper.should_stop:
                break
        stopper.restore_best()

    def _solve(self, rows: "_Rows", fixed: torch.Tensor, fixed_bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """New vectors ``(n_rows, f)`` and biases ``(n_rows,)`` of the rows of ``rows``, the other side fixed.

        Row ``u`` solves ``(Σ_{i∈u} ỹ_i ỹ_iᵀ + λ n_u I) [x_u; b_u] = Σ_{i∈u} (r_ui − μ − b_i) ỹ_i`` with
        ``ỹ_i = [y_i; 1]``: the normal equations of ``Σ_{i∈u} (r_ui − μ − b_u − b_i − x_u·y_i)² + λ n_u
        (‖x_u‖² + b_u²)``. A row without ratings gets zeros.
        """
        size = fixed.shape[1] + 1
        augmented = torch.cat([fixed, torch.ones(len(fixed), 1, device=self.device)], dim=1)  # (n_fixed, f + 1)
        outer = (augmented[:, :, None] * augmented[:, None, :]).reshape(len(fixed), size * size)
        residuals = rows.with_values(rows.centred - fixed_bias[rows.columns])
        penalty = self.hparams["regularization"] * rows.counts.clamp(min=1)
        identity = torch.eye(size, device=self.device)
        block = max(1, SOLVE_BLOCK_ENTRIES // (size * size))
        solutions = []
        for start in range(0, rows.n_rows, block):
            end = min(start + block, rows.n_rows)
            lhs = (csr_row_block(rows.ones, start, end) @ outer).reshape(-1, size, size)
            lhs = lhs + penalty[start:end, None, None] * identity
            rhs = csr_row_block(residuals, start, end) @ augmented
            solutions.append(torch.linalg.solve(lhs, rhs))
        solved = torch.cat(solutions) if solutions else fixed.new_zeros(0, size)
        return solved[:, :-1].contiguous(), solved[:, -1].contiguous()

    @torch.no_grad()
    def predict_ratings(self, users: Sequence[int] | np.ndarray, items: Sequence[int] | np.ndarray) -> torch.Tensor:
        """``μ + b_u + b_i + x_u·y_i`` clipped to the training ratings' range: float32 ``(n,)``."""
        user_rows, item_rows = self.users_tensor(users), self._items_tensor(items)
        if user_rows.shape != item_rows.shape:
            raise ValueError("users and items must have the same length")
        interaction = (self.user_factors[user_rows] * self.item_factors[item_rows]).sum(dim=1)
        predicted = self.user_bias[user_rows] + self.item_bias[item_rows] + interaction
        return ratings_clipped(predicted, self.rating_range).cpu()

    @torch.no_grad()
    def score(self, users: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Every item's predicted rating: float32 ``(len(users), n_items)``."""
        rows = self.users_tensor(users)
        predicted = self.user_factors[rows] @ self.item_factors.T + self.user_bias[rows, None] + self.item_bias
        return ratings_clipped(predicted, self.rating_range).cpu()

    @torch.no_grad()
    def history_ratings(self, items: np.ndarray, ratings: np.ndarray) -> torch.Tensor:
        """Every item's predicted rating ``(n_items,)`` for a user who rated ``items`` ``ratings`` (an item rated
        more than once: the mean), their vector and bias solved against the fixed items as training's user step
        solves them (an empty history: the zero vector and bias)."""
        distinct, inverse = np.unique(np.asarray(items, dtype=np.int64), return_inverse=True)
        means = np.bincount(inverse, weights=ratings, minlength=len(distinct)) / np.maximum(np.bincount(inverse), 1)
        centred = torch.from_numpy(means.astype(np.float32)).to(self.device) - self.rating_range[0]
        row = _Rows.of(np.zeros(len(distinct), dtype=np.int64), distinct, centred, (1, self.n_items), self.device)
        vector, bias = self._solve(row, self.item_factors, self.item_bias)
        return ratings_clipped(vector[0] @ self.item_factors.T + bias[0] + self.item_bias, self.rating_range)

    def _items_tensor(self, items: Sequence[int] | np.ndarray) -> torch.Tensor:
        tensor = torch.as_tensor(np.asarray(items, dtype=np.int64), device=self.device)
        if tensor.ndim != 1 or (len(tensor) and (int(tensor.min()) < 0 or int(tensor.max()) >= self.n_items)):
            raise ValueError(f"items must be a 1-D sequence of item indexes in 0..{self.n_items - 1}")
        return tensor

    def item_vectors(self) -> torch.Tensor:
        return self.item_factors

    def user_row_tensors(self) -> tuple[str, ...]:
        return ("user_factors", "user_bias")

    def state_tensors(self) -> dict[str, torch.Tensor]:
        names = ("user_factors", "item_factors", "user_bias", "item_bias", "rating_range")
        return {name: getattr(self, name).detach() for name in names}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        for name, tensor in tensors.items():
            setattr(self, name, tensor.float().to(self.device))


class _Rows:
    """The rated pairs grouped by row (users, or items) as CSR matrices sharing one layout: ``ones`` (1 per
    pair), the centred ratings ``centred`` ``(nnz,)`` (rating − global mean), each pair's ``columns`` ``(nnz,)``
    and each row's ``counts`` ``(n_rows,)``."""

    def __init__(self, ones: torch.Tensor, centred: torch.Tensor, counts: torch.Tensor) -> None:
        self.ones, self.centred, self.counts = ones, centred, counts
        self.columns = ones.col_indices()
        self.n_rows = ones.shape[0]

    @classmethod
    def of(
        cls, rows: np.ndarray, columns: np.ndarray, values: torch.Tensor, shape: tuple[int, int], device: torch.device
    ) -> "_Rows":
        """From parallel ``(nnz,)`` row and column indexes (distinct pairs) and their values."""
        order = torch.from_numpy(np.lexsort((columns, rows))).to(device)
        counts = torch.from_numpy(np.bincount(rows, minlength=shape[0])).to(device)
        crow = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
        col = torch.from_numpy(columns).to(device)[order]
        ones = csr_tensor(crow, col, torch.ones(len(col), device=device), shape)
        return cls(ones, values[order], counts.float())

    def with_values(self, values: torch.Tensor) -> torch.Tensor:
        """A CSR matrix of this layout holding ``values`` ``(nnz,)``."""
        return csr_tensor(self.ones.crow_indices(), self.columns, values, (self.n_rows, self.ones.shape[1]))
