"""Item-based k-nearest neighbours on the binary user × item matrix (RecBole's ItemKNN)."""

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
from training.algorithms.params import Param
from training.algorithms.registry import register
from training.interactions import HeldOut, InteractionData, csr_rows_dense

# Float entries of the dense blocks held at once while computing similarities (64 MiB).
SIMILARITY_BLOCK_ENTRIES = 1 << 24


@register
class ItemKNN(TrainingMatrixRecommender):
    name = "item_knn"
    label = "Item kNN"
    family = "baseline"
    description = (
        "Scores an item by summing its cosine similarity (with shrinkage) to the items the user has, "
        "keeping each item's k most similar neighbours."
    )
    params = (
        Param("k", int, 100, help="Neighbours kept per item.", minimum=1, maximum=10_000, search=(5, 1000), log=True),
        Param(
            "shrink",
            float,
            0.0,
            help="Added to the cosine denominator; damps pairs seen together rarely.",
            minimum=0.0,
            maximum=1e6,
            search=(0.0, 200.0),
        ),
    )

    def fit(
        self, data: InteractionData, progress: ProgressCallback = no_progress, *, validation: HeldOut | None = None
    ) -> None:
        self.keep_training_matrix(data)
        self.neighbour_indices, self.neighbour_weights = self._neighbours(data)
        self._build_similarity()
        progress(EpochReport(phase="fit", step=1, total=1, validation=validation_scores(self, data, validation)))

    def _neighbours(self, data: InteractionData) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k cosine neighbours of every item: indices int64 and weights float32, both ``(n_items, k)``."""
        k = min(self.hparams["k"], max(self.n_items - 1, 1))
        items_by_user = data.csr_by_item().to(self.device)  # (n_items, n_users) binary CSR
        item_crow, item_col = items_by_user.crow_indices(), items_by_user.col_indices()
        norms = torch.sqrt(torch.diff(item_crow).float())
        block_size = max(1, SIMILARITY_BLOCK_ENTRIES // max(self.n_users, self.n_items))
        indices, weights = [], []
        for start in range(0, self.n_items, block_size):
            block = torch.arange(start, min(start + block_size, self.n_items), device=self.device)
            columns = csr_rows_dense(item_crow, item_col, block, self.n_users).T  # (n_users, block)
            co_counts = (items_by_user @ columns).T  # (block, n_items): users who have both items
            similarity = co_counts / (norms[block, None] * norms[None, :] + self.hparams["shrink"] + 1e-6)
            similarity[torch.arange(len(block), device=self.device), block] = 0.0
            top = torch.topk(similarity, k, dim=1)
            indices.append(top.indices)
            weights.append(top.values)
        return torch.cat(indices), torch.cat(weights)

    def _build_similarity(self) -> None:
        """The sparse ``(n_items, n_items)`` neighbour matrix used by :meth:`score`."""
        k = self.neighbour_indices.shape[1]
        rows = torch.arange(self.n_items, device=self.device).repeat_interleave(k)
        coordinates = torch.stack([rows, self.neighbour_indices.reshape(-1)])
        # Checked: after a load these indexes come from an artifact file.
        self.similarity = torch.sparse_coo_tensor(
            coordinates, self.neighbour_weights.reshape(-1), (self.n_items, self.n_items), check_invariants=True
        ).to_sparse_csr()

    def score(self, users: Sequence[int] | np.ndarray) -> torch.Tensor:
        """``score[u, j] = Σ_i x[u, i] · similarity[j, i]``: float32 ``(len(users), n_items)``."""
        rows = self.training_rows(self.users_tensor(users))
        return torch.sparse.mm(self.similarity, rows.T).T.contiguous().cpu()

    explainable = True

    def similar_items(self, items: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Each item's neighbour weights: ``(len(items), n_items)``."""
        return self._similarity_rows(items)

    def explain(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``similarity[j, i]`` for each recommended ``j`` and history item ``i``: the terms of the score."""
        return self._similarity_rows(items)[:, torch.as_tensor(np.asarray(history), dtype=torch.long)].numpy()

    def _similarity_rows(self, items: Sequence[int] | np.ndarray) -> torch.Tensor:
        rows = torch.as_tensor(np.asarray(items), dtype=torch.long, device=self.device)
        dense = torch.zeros(len(rows), self.n_items, device=self.device)
        dense.scatter_(1, self.neighbour_indices[rows], self.neighbour_weights[rows])
        return dense.cpu()

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {
            "neighbour_indices": self.neighbour_indices,
            "neighbour_weights": self.neighbour_weights,
        } | self.training_matrix_tensors()

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.neighbour_indices = tensors["neighbour_indices"].to(self.device)
        self.neighbour_weights = tensors["neighbour_weights"].to(self.device)
        self.load_training_matrix(tensors)
        self._build_similarity()
