"""Metrics by activity slice: cold, warm and hot users and items.

A user (item) is *cold* with at most ``cold`` training events, *hot* with more than ``hot``, and
*warm* in between. User slices average the per-user NDCG@K and Recall@K of the users in the slice;
item slices give the share of the slice's held-out (user, item) pairs that made the user's top K
(recall restricted to those items), which shows how a model serves the long tail.
"""

from __future__ import annotations

import numpy as np

from training.evaluation.metrics import ndcg_at_k, recall_at_k, relevance_hits
from training.evaluation.ranking import Scorer, top_k_items
from training.interactions import HeldOut, InteractionData

COLD, HOT = 5, 50
SLICES = ("cold", "warm", "hot")


def activity_bucket(counts: np.ndarray, *, cold: int = COLD, hot: int = HOT) -> np.ndarray:
    """``(n,)`` array of "cold" / "warm" / "hot" for training-event counts ``(n,)``."""
    counts = np.asarray(counts)
    return np.where(counts <= cold, "cold", np.where(counts > hot, "hot", "warm"))


def activity_slices(
    model: Scorer,
    train: InteractionData,
    test: HeldOut,
    *,
    k: int = 10,
    exclude: HeldOut | None = None,
    cold: int = COLD,
    hot: int = HOT,
) -> dict[str, float]:
    """Flat metrics ``slice.<users|items>.<cold|warm|hot>.<metric>`` plus the size of each slice."""
    users = test.users_with_items()
    if len(users) == 0:
        return {}
    k = min(k, train.n_items)
    recommended = top_k_items(model, train, users, k=k, exclude=exclude).numpy()
    relevant = [test.items_of(user) for user in users]
    hits, n_relevant = relevance_hits(recommended, relevant)
    ndcg, recall = ndcg_at_k(hits, n_relevant, k), recall_at_k(hits, n_relevant, k)
    user_bucket = activity_bucket(np.bincount(train.users, minlength=train.n_users)[users], cold=cold, hot=hot)
    item_bucket = activity_bucket(np.bincount(train.items, minlength=train.n_items), cold=cold, hot=hot)
    figures: dict[str, float] = {}
    for name in SLICES:
        chosen = user_bucket == name
        figures[f"slice.users.{name}.count"] = int(chosen.sum())
        if chosen.any():
            figures[f"slice.users.{name}.ndcg@{k}"] = float(ndcg[chosen].mean())
            figures[f"slice.users.{name}.recall@{k}"] = float(recall[chosen].mean())
    figures.update(_item_slices(recommended, relevant, item_bucket, k))
    return figures


def _item_slices(recommended: np.ndarray, relevant: list[np.ndarray], item_bucket: np.ndarray, k: int) -> dict:
    found = {name: 0 for name in SLICES}
    total = {name: 0 for name in SLICES}
    for row, items in enumerate(relevant):
        top = set(recommended[row].tolist())
        for item in items.tolist():
            bucket = item_bucket[item]
            total[bucket] += 1
            found[bucket] += item in top
    figures: dict[str, float] = {}
    for name in SLICES:
        figures[f"slice.items.{name}.count"] = total[name]
        if total[name]:
            figures[f"slice.items.{name}.recall@{k}"] = found[name] / total[name]
    return figures
