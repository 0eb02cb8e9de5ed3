"""The data every algorithm and every evaluation reads: events as parallel arrays, held-out sets, CSR helpers.

Users and items are dense indexes ``0..n_users-1`` and ``0..n_items-1``; the Django side maps
external ids. Plain NumPy and PyTorch, no Django imports. It sits outside ``training.algorithms``
because importing anything in that package imports every algorithm (its ``__init__`` registers
them), and ``training.evaluation``, which the algorithms use, must not depend on them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class InteractionData:
    """Events as parallel arrays, sorted by (timestamp, original order).

    Shapes: ``users``, ``items``, ``timestamps`` are ``(n_events,)`` int64;
    ``weights`` is ``(n_events,)`` float32 (the scenario's event weight times value).

    Optional side inputs: ``item_features`` is ``(n_items, d)`` float32 (e.g. the items' text
    embeddings) for models that use content; ``domains`` is ``(n_events,)`` int64, the domain
    (member scenario) of each event, for multi-domain models such as STAR.
    """

    n_users: int
    n_items: int
    users: np.ndarray
    items: np.ndarray
    weights: np.ndarray
    timestamps: np.ndarray
    item_features: np.ndarray | None = None
    domains: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.users)
        if not (len(self.items) == len(self.weights) == len(self.timestamps) == n):
            raise ValueError("users, items, weights and timestamps must have the same length")
        if n and (self.users.min() < 0 or self.users.max() >= self.n_users):
            raise ValueError("user index out of range")
        if n and (self.items.min() < 0 or self.items.max() >= self.n_items):
            raise ValueError("item index out of range")
        features = self.item_features
        if features is not None and (features.ndim != 2 or features.shape[0] != self.n_items):
            raise ValueError(f"item_features must have shape (n_items={self.n_items}, d), not {features.shape}")
        if self.domains is not None:
            if self.domains.shape != (n,):
                raise ValueError(f"domains must have shape (n_events={n},), not {self.domains.shape}")
            if n and self.domains.min() < 0:
                raise ValueError("domain index must not be negative")

    @property
    def n_events(self) -> int:
        return len(self.users)

    def distinct_users_per_item(self) -> np.ndarray:
        """``(n_items,)`` int64: how many distinct users interacted with each item (the items' popularity)."""
        pairs = np.unique(self.users.astype(np.int64) * self.n_items + self.items)
        return np.bincount(pairs % self.n_items, minlength=self.n_items)

    def csr(self, *, binary: bool = True) -> torch.Tensor:
        """The user × item matrix as a sparse CSR float32 tensor (duplicates summed, or 1 when binary)."""
        return sparse_csr(self.users, self.items, (self.n_users, self.n_items), None if binary else self.weights)

    def csr_by_item(self) -> torch.Tensor:
        """The binary item × user matrix ``(n_items, n_users)`` as a sparse CSR float32 tensor."""
        return sparse_csr(self.items, self.users, (self.n_items, self.n_users), None)


def indexed_interactions(
    users: np.ndarray, items: np.ndarray, weights: np.ndarray, timestamps: np.ndarray
) -> tuple[InteractionData, np.ndarray, np.ndarray]:
    """Events ``(n,)`` with their users and items numbered ``0..`` in the sorted order of their keys: the data, and
    the keys of its users ``(n_users,)`` and items ``(n_items,)``."""
    user_keys, users_index = np.unique(users, return_inverse=True)
    item_keys, items_index = np.unique(items, return_inverse=True)
    data = InteractionData(
        n_users=len(user_keys),
        n_items=len(item_keys),
        users=users_index.astype(np.int64),
        items=items_index.astype(np.int64),
        weights=weights,
        timestamps=timestamps,
    )
    return data, user_keys, item_keys


def sparse_csr(
    rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int], values: np.ndarray | None
) -> torch.Tensor:
    """CSR float32 matrix of the ``(n,)`` (row, column) pairs: ``values`` summed, or 1 per distinct pair if None."""
    indices = torch.from_numpy(np.stack([rows, columns]).astype(np.int64))
    data = torch.ones(len(rows)) if values is None else torch.from_numpy(values.astype(np.float32))
    # The indexes were range-checked in InteractionData.__post_init__; torch's own check would repeat that.
    matrix = torch.sparse_coo_tensor(indices, data, shape, check_invariants=False).coalesce()
    if values is None:
        ones = torch.ones_like(matrix.values())
        matrix = torch.sparse_coo_tensor(matrix.indices(), ones, shape, is_coalesced=True, check_invariants=False)
    with warnings.catch_warnings():  # torch notes that sparse CSR is in beta; the operations used here are stable
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
        return matrix.to_sparse_csr()


@dataclass(frozen=True)
class HeldOut:
    """Each user's held-out items (a validation or test set) in a CSR layout.

    ``indptr`` is ``(n_users + 1,)`` int64 and ``items`` is ``(n_pairs,)`` int64: user ``u``'s
    items are ``items[indptr[u]:indptr[u + 1]]``, sorted and unique. Users with no items are
    simply not evaluated. ``values`` (optional) is ``(n_pairs,)`` float32, the value of each pair
    (a rating), aligned with ``items``; rating metrics read it. Build one with :meth:`from_pairs`.
    """

    n_users: int
    n_items: int
    indptr: np.ndarray
    items: np.ndarray
    values: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.indptr.shape != (self.n_users + 1,) or self.indptr[0] != 0 or self.indptr[-1] != len(self.items):
            raise ValueError("indptr must have n_users + 1 entries, start at 0 and end at len(items)")
        if np.any(np.diff(self.indptr) < 0):
            raise ValueError("indptr must not decrease")
        if len(self.items) and (self.items.min() < 0 or self.items.max() >= self.n_items):
            raise ValueError("item index out of range")
        if self.values is not None and self.values.shape != self.items.shape:
            raise ValueError(f"values must have shape (n_pairs={len(self.items)},), not {self.values.shape}")

    @classmethod
    def from_pairs(
        cls, n_users: int, n_items: int, users: np.ndarray, items: np.ndarray, values: np.ndarray | None = None
    ) -> HeldOut:
        """Build from parallel ``(n,)`` arrays of (user, item) pairs and, optionally, their values; a pair given
        more than once is kept once, with the mean of its values."""
        users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        if users.shape != items.shape or users.ndim != 1:
            raise ValueError("users and items must be 1-D arrays of the same length")
        if values is not None and np.shape(values) != users.shape:
            raise ValueError("values must have the same length as users and items")
        if len(users) and (users.min() < 0 or users.max() >= n_users):
            raise ValueError("user index out of range")
        keys, inverse = np.unique(users * n_items + items, return_inverse=True)
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys // n_items, minlength=n_users), out=indptr[1:])
        means = None if values is None else pair_means(inverse, np.asarray(values, dtype=np.float64), len(keys))
        return cls(n_users=n_users, n_items=n_items, indptr=indptr, items=keys % n_items, values=means)

    @property
    def n_pairs(self) -> int:
        return len(self.items)

    def counts(self) -> np.ndarray:
        """``(n_users,)`` int64: how many held-out items each user has."""
        return np.diff(self.indptr)

    def users_with_items(self) -> np.ndarray:
        """``(n,)`` int64: the users that have at least one held-out item, ascending."""
        return np.flatnonzero(self.counts() > 0)

    def items_of(self, user: int) -> np.ndarray:
        return self.items[self.indptr[user] : self.indptr[user + 1]]

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """The held-out (user, item) pairs as two ``(n_pairs,)`` arrays."""
        return np.repeat(np.arange(self.n_users), self.counts()), self.items


def pair_means(inverse: np.ndarray, values: np.ndarray, n_pairs: int) -> np.ndarray:
    """``(n_pairs,)`` float32: the mean of ``values`` ``(n,)`` within each pair index of ``inverse`` ``(n,)``."""
    sums = np.bincount(inverse, weights=values, minlength=n_pairs)
    return (sums / np.maximum(np.bincount(inverse, minlength=n_pairs), 1)).astype(np.float32)


def rating_pairs(data: InteractionData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (user, item) pairs of ``data`` with the mean of their weights (the ratings, under the rating
    objective): ``(n_pairs,)`` int64 users and items and float32 ratings, sorted by user then item."""
    keys, inverse = np.unique(data.users.astype(np.int64) * data.n_items + data.items, return_inverse=True)
    return keys // data.n_items, keys % data.n_items, pair_means(inverse, data.weights.astype(np.float64), len(keys))


def rating_range(ratings: np.ndarray, device: torch.device) -> tuple[float, torch.Tensor]:
    """The mean of ``ratings`` ``(n,)`` and ``[mean, min, max]`` as a float32 ``(3,)`` tensor on ``device`` (zeros
    when there is none): what a rating model centres on and clips its predictions to."""
    mean = float(ratings.mean()) if len(ratings) else 0.0
    low, high = (float(ratings.min()), float(ratings.max())) if len(ratings) else (0.0, 0.0)
    return mean, torch.tensor([mean, low, high], device=device)


def ratings_clipped(centred: torch.Tensor, rating_range: torch.Tensor) -> torch.Tensor:
    """Centred predictions with the mean of ``rating_range`` (as made by :func:`rating_range`) added back, clipped
    to its min and max."""
    mean, low, high = rating_range.tolist()
    return (centred + mean).clamp(low, high)


def csr_tensor(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A sparse CSR tensor of these parts (``(n_rows + 1,)``, ``(nnz,)``, ``(nnz,)``), not checked again."""
    with warnings.catch_warnings():  # torch notes that sparse CSR is in beta; the operations used here are stable
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


def csr_row_block(matrix: torch.Tensor, start: int, end: int) -> torch.Tensor:
    """Rows ``start:end`` of a sparse CSR matrix, as a sparse CSR matrix ``(end − start, n_columns)``."""
    crow, col, values = matrix.crow_indices(), matrix.col_indices(), matrix.values()
    first, last = int(crow[start]), int(crow[end])
    return torch.sparse_csr_tensor(
        crow[start : end + 1] - first,
        col[first:last],
        values[first:last],
        (end - start, matrix.shape[1]),
        check_invariants=False,
    )


def csr_rows_dense(crow: torch.Tensor, col: torch.Tensor, rows: torch.Tensor, n_columns: int) -> torch.Tensor:
    """Rows of a binary CSR matrix as a dense float32 ``(len(rows), n_columns)`` tensor.

    ``crow`` is ``(n_rows + 1,)`` and ``col`` is ``(nnz,)``, both int64 on the same device as ``rows``.
    """
    starts, lengths = crow[rows], crow[rows + 1] - crow[rows]
    total = int(lengths.sum())
    row_of_entry = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), lengths, output_size=total)
    first_entry = torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths, output_size=total)
    position = torch.repeat_interleave(starts, lengths, output_size=total)
    position = position + torch.arange(total, device=rows.device) - first_entry
    dense = torch.zeros(len(rows), n_columns, device=rows.device)
    dense[row_of_entry, col[position]] = 1.0
    return dense


def csr_rows_clear(crow: torch.Tensor, col: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The binary CSR matrix ``(crow, col)`` with ``rows`` emptied; its shape is kept."""
    lengths = crow[1:] - crow[:-1]
    kept_rows = torch.ones(len(lengths), dtype=torch.bool, device=crow.device)
    kept_rows[rows.to(crow.device)] = False
    kept_entries = torch.repeat_interleave(kept_rows, lengths, output_size=len(col))
    new_lengths = torch.where(kept_rows, lengths, torch.zeros_like(lengths))
    new_crow = torch.cat([crow[:1].new_zeros(1), torch.cumsum(new_lengths, 0)])
    return new_crow, col[kept_entries.to(col.device)]
