"""Full-ranking evaluation: score every item for every evaluated user, mask what they have seen, take the top K."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import torch

from training.evaluation.metrics import (
    average_popularity,
    catalog_coverage,
    mean_metrics,
    ndcg_at_k,
    ranking_metrics,
)
from training.evaluation.splits import Split, history_before_test
from training.interactions import HeldOut, InteractionData, csr_rows_dense


class Scorer(Protocol):
    """What ranking needs of a model: a recommender, or a trained model seen through another index."""

    def score(self, users: np.ndarray) -> torch.Tensor:
        """Scores of every item for each user: float32 ``(len(users), n_items)``."""
        ...


DEFAULT_KS = (5, 10, 20)


def scorer_for_test(
    model: Scorer,
    data: InteractionData,
    split: Split,
    *,
    to_model: Callable[[InteractionData], InteractionData] | None = None,
) -> Scorer:
    """``model`` as it predicts the test events of ``split`` (cut from ``data``): a model with a history hook
    (``after_history``: the sequential models) reads the training and the validation events, since under
    leave-last-out or a time cut the validation events are the user's latest before the test; other models
    score from what they learned in training. ``to_model`` puts that history in the model's user and item
    indexes where ``data``'s are others (the scenario matrix reads a run's model through its own)."""
    after_history = getattr(model, "after_history", None)
    if after_history is None or not len(split.validation_events):
        return model
    history = history_before_test(data, split)
    return after_history(history if to_model is None else to_model(history))


def top_k_items(
    model: Scorer,
    train: InteractionData,
    users: np.ndarray,
    *,
    k: int,
    exclude: HeldOut | None = None,
    batch_size: int = 1024,
) -> torch.Tensor:
    """Each user's ``k`` best items, best first: int64 ``(len(users), k)`` on the CPU.

    The user's training items (and ``exclude``'s items, e.g. the validation set when ranking
    for the test set) are set to −inf before the top-k, so they appear only when a user has
    fewer than ``k`` other items.
    """
    if not 1 <= k <= train.n_items:
        raise ValueError(f"k must be from 1 to n_items ({train.n_items}), got {k}")
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    if exclude is not None:
        _check_same_space(train, exclude)
    seen = [_csr_indexes(train)] + ([_heldout_indexes(exclude)] if exclude is not None else [])
    users = np.asarray(users, dtype=np.int64)
    batches = [
        _top_k_batch(model, users[start : start + batch_size], seen, k, train.n_items)
        for start in range(0, len(users), batch_size)
    ]
    return torch.cat(batches) if batches else torch.zeros(0, k, dtype=torch.int64)


def mean_ndcg(model: Scorer, train: InteractionData, heldout: HeldOut, *, k: int = 10) -> float:
    """Mean NDCG@k over the users that have held-out items (0.0 when none has); used for early stopping."""
    per_user = users_ndcg(model, train, heldout, k=k)
    return float(per_user.mean()) if len(per_user) else 0.0


def users_ndcg(model: Scorer, train: InteractionData, heldout: HeldOut, *, k: int = 10) -> np.ndarray:
    """NDCG@k of each user that has held-out items, in user order (training items masked)."""
    _check_same_space(train, heldout)
    users = heldout.users_with_items()
    if not len(users):
        return np.zeros(0)
    recommended = top_k_items(model, train, users, k=k)
    return ndcg_at_k(*_held_out_hits(heldout, users, recommended), k)


def evaluate(
    model: Scorer,
    train: InteractionData,
    heldout: HeldOut,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    exclude: HeldOut | None = None,
    batch_size: int = 1024,
) -> dict[str, Any]:
    """Full-ranking metrics of ``model`` on ``heldout``, as JSON-serialisable values.

    Only users with held-out items are evaluated. Returns::

        {"ks": [5, 10, 20], "n_users": 938,
         "metrics": {"precision@5": ..., "ndcg@10": ..., "coverage@10": ..., "average_popularity@10": ...},
         "per_user": {"users": [user indexes], "ndcg@10": [one value per user, same order], ...}}

    ``metrics`` holds the means of :data:`~training.evaluation.metrics.RANKING_METRICS` at every
    cut-off, catalogue coverage and the average training popularity (distinct training users
    per item) of the recommended items; ``per_user`` allows paired comparisons between runs.
    """
    ks = sorted({_positive_int(k) for k in ks})
    if not ks:
        raise ValueError("ks must name at least one cut-off")
    _check_same_space(train, heldout)
    users = heldout.users_with_items()
    top_k = top_k_items(model, train, users, k=ks[-1], exclude=exclude, batch_size=batch_size)
    recommended = top_k.numpy()
    popularity = train.distinct_users_per_item()
    per_user = ranking_metrics(*_held_out_hits(heldout, users, top_k, batch_size), ks)
    per_user |= {f"average_popularity@{k}": average_popularity(recommended, popularity, k) for k in ks}
    metrics = mean_metrics(per_user) | {f"coverage@{k}": catalog_coverage(recommended, train.n_items, k) for k in ks}
    return {
        "ks": ks,
        "n_users": len(users),
        "metrics": metrics,
        "per_user": {"users": users.tolist(), **{name: values.tolist() for name, values in per_user.items()}},
    }


def _top_k_batch(
    model: Scorer, users: np.ndarray, seen: list[tuple[torch.Tensor, torch.Tensor]], k: int, n_items: int
) -> torch.Tensor:
    scores = model.score(users)
    if scores.shape != (len(users), n_items):
        raise ValueError(
            f"{type(model).__name__}.score returned shape {tuple(scores.shape)}, expected {(len(users), n_items)}"
        )
    rows = torch.from_numpy(users)
    for crow, col in seen:
        scores = scores.masked_fill(csr_rows_dense(crow, col, rows, n_items).bool(), float("-inf"))
    return torch.topk(scores, k, dim=1).indices


def _held_out_hits(
    heldout: HeldOut, users: np.ndarray, recommended: torch.Tensor, batch_size: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """``hits`` ``(len(users), K)`` bool (is ``recommended[u, r]`` held out for ``users[u]``) and ``n_relevant``."""
    indptr, items = _heldout_indexes(heldout)
    rows = torch.from_numpy(users)
    hits = [
        csr_rows_dense(indptr, items, rows[start : start + batch_size], heldout.n_items)
        .gather(1, recommended[start : start + batch_size])
        .bool()
        for start in range(0, len(users), batch_size)
    ]
    hits_matrix = torch.cat(hits) if hits else torch.zeros(recommended.shape, dtype=torch.bool)
    return hits_matrix.numpy(), heldout.counts()[users]


def _csr_indexes(data: InteractionData) -> tuple[torch.Tensor, torch.Tensor]:
    matrix = data.csr()
    return matrix.crow_indices(), matrix.col_indices()


def _heldout_indexes(heldout: HeldOut) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(heldout.indptr), torch.from_numpy(heldout.items)


def _check_same_space(train: InteractionData, heldout: HeldOut) -> None:
    if (heldout.n_users, heldout.n_items) != (train.n_users, train.n_items):
        raise ValueError(
            f"held-out set is {heldout.n_users} users × {heldout.n_items} items, "
            f"training data {train.n_users} × {train.n_items}"
        )


def _positive_int(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"cut-offs must be positive integers, got {k!r}")
    return k
