"""Top-K ranking metrics as pure NumPy functions.

Conventions (binary relevance, one row per evaluated user):

- ``recommended`` is ``(n_users, K)`` int64: each user's top-K item indexes, best first,
  training items already excluded, no item twice in a row.
- ``hits`` is ``(n_users, K)`` bool: ``hits[u, r]`` is true when the item at rank ``r + 1`` is relevant.
- ``n_relevant`` is ``(n_users,)`` int64, at least 1: the size of each user's relevant set.
  Users with no relevant items are not evaluated; leave them out before calling.

Every per-user metric returns a float64 ``(n_users,)`` vector with values in ``[0, 1]``;
``k`` may be any cut-off from 1 to ``K`` (the metric uses the first ``k`` columns).
The definitions follow RecBole's (``recbole.evaluator.metrics``).
"""

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

RANKING_METRICS = ("precision", "recall", "ndcg", "map", "mrr", "hit")


def relevance_hits(recommended: np.ndarray, relevant: Sequence[Iterable[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Mark which recommendations are relevant.

    ``relevant[u]`` holds user ``u``'s relevant item indexes (duplicates are ignored).
    Returns ``hits`` ``(n_users, K)`` bool and ``n_relevant`` ``(n_users,)`` int64.
    """
    recommended = _check_recommended(recommended)
    if len(relevant) != len(recommended):
        raise ValueError(f"relevant has {len(relevant)} users but recommended has {len(recommended)} rows")
    sets = [np.unique(np.asarray(list(items), dtype=np.int64)) for items in relevant]
    n_relevant = np.array([len(items) for items in sets], dtype=np.int64)
    flat = np.concatenate(sets) if sets else np.zeros(0, dtype=np.int64)
    if len(flat) and flat.min() < 0:
        raise ValueError("relevant item indexes must be non-negative")
    width = int(max(flat.max(initial=0), recommended.max(initial=0))) + 1
    relevant_keys = np.repeat(np.arange(len(sets)), n_relevant) * width + flat
    recommended_keys = np.arange(len(recommended))[:, None] * width + recommended
    return np.isin(recommended_keys, relevant_keys), n_relevant


def precision_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """Relevant items among the top ``k``, divided by ``k``."""
    hits = _check_hits(hits, k)
    return hits[:, :k].sum(axis=1) / k


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Relevant items among the top ``k``, divided by the number of relevant items."""
    hits, n_relevant = _check_hits(hits, k), _check_n_relevant(n_relevant, hits)
    return hits[:, :k].sum(axis=1) / n_relevant


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """DCG of the top ``k`` (gain 1 / log2(rank + 1)) over the ideal DCG of ``min(n_relevant, k)`` hits."""
    hits, n_relevant = _check_hits(hits, k), _check_n_relevant(n_relevant, hits)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits[:, :k] * discounts).sum(axis=1)
    ideal = np.cumsum(discounts)[np.minimum(n_relevant, k) - 1]
    return dcg / ideal


def map_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Sum of precision@rank at each hit rank within the top ``k``, divided by ``min(n_relevant, k)``."""
    hits, n_relevant = _check_hits(hits, k), _check_n_relevant(n_relevant, hits)
    top = hits[:, :k]
    precision_at_rank = np.cumsum(top, axis=1) / np.arange(1, k + 1)
    return (precision_at_rank * top).sum(axis=1) / np.minimum(n_relevant, k)


def mrr_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """One over the rank of the first relevant item in the top ``k`` (0 when there is none)."""
    hits = _check_hits(hits, k)
    top = hits[:, :k]
    first = np.argmax(top, axis=1)
    return np.asarray(np.where(top.any(axis=1), 1.0 / (first + 1), 0.0), dtype=np.float64)


def hit_rate_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """1.0 when at least one relevant item is in the top ``k``, else 0.0."""
    hits = _check_hits(hits, k)
    return np.asarray(hits[:, :k].any(axis=1), dtype=np.float64)


def ranking_metrics(hits: np.ndarray, n_relevant: np.ndarray, ks: Sequence[int]) -> dict[str, np.ndarray]:
    """Every metric of :data:`RANKING_METRICS` at every cut-off: ``{"ndcg@10": (n_users,) float64, ...}``."""
    if not ks:
        raise ValueError("ks must name at least one cut-off")
    result: dict[str, np.ndarray] = {}
    for k in ks:
        result[f"precision@{k}"] = precision_at_k(hits, k)
        result[f"recall@{k}"] = recall_at_k(hits, n_relevant, k)
        result[f"ndcg@{k}"] = ndcg_at_k(hits, n_relevant, k)
        result[f"map@{k}"] = map_at_k(hits, n_relevant, k)
        result[f"mrr@{k}"] = mrr_at_k(hits, k)
        result[f"hit@{k}"] = hit_rate_at_k(hits, k)
    return result


def mean_metrics(per_user: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Mean of each per-user vector (0.0 for an empty one)."""
    return {name: float(values.mean()) if len(values) else 0.0 for name, values in per_user.items()}


def catalog_coverage(recommended: np.ndarray, n_items: int, k: int | None = None) -> float:
    """Distinct items in everyone's top ``k`` (default all K), divided by ``n_items``; in ``[0, 1]``."""
    recommended = _check_recommended(recommended)
    k = recommended.shape[1] if k is None else _check_k(k, recommended.shape[1])
    if n_items <= 0:
        raise ValueError("n_items must be positive")
    if recommended.size and recommended.max() >= n_items:
        raise ValueError("recommended item index out of range")
    return len(np.unique(recommended[:, :k])) / n_items


def average_popularity(recommended: np.ndarray, item_popularity: np.ndarray, k: int | None = None) -> np.ndarray:
    """Per user, the mean ``item_popularity`` (``(n_items,)``, e.g. training interactions per item) of the top ``k``.

    Returns ``(n_users,)`` float64 in ``[min(item_popularity), max(item_popularity)]``.
    """
    recommended = _check_recommended(recommended)
    k = recommended.shape[1] if k is None else _check_k(k, recommended.shape[1])
    item_popularity = np.asarray(item_popularity, dtype=np.float64)
    if item_popularity.ndim != 1:
        raise ValueError("item_popularity must be a 1-D array over items")
    if recommended.size and recommended.max() >= len(item_popularity):
        raise ValueError("recommended item index out of range")
    return item_popularity[recommended[:, :k]].mean(axis=1)


def _check_recommended(recommended: np.ndarray) -> np.ndarray:
    recommended = np.asarray(recommended)
    if recommended.ndim != 2 or recommended.shape[1] == 0:
        raise ValueError("recommended must be a (n_users, K) array with K >= 1")
    if not np.issubdtype(recommended.dtype, np.integer):
        raise ValueError("recommended must hold integer item indexes")
    if recommended.size and recommended.min() < 0:
        raise ValueError("recommended item indexes must be non-negative")
    ordered = np.sort(recommended, axis=1)
    if np.any(ordered[:, 1:] == ordered[:, :-1]):
        raise ValueError("a user's recommendations must not repeat an item")
    return recommended.astype(np.int64, copy=False)


def _check_hits(hits: np.ndarray, k: int) -> np.ndarray:
    hits = np.asarray(hits)
    if hits.ndim != 2 or hits.dtype != np.bool_:
        raise ValueError("hits must be a (n_users, K) bool array")
    _check_k(k, hits.shape[1])
    return hits


def _check_k(k: int, width: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= width:
        raise ValueError(f"k must be an integer from 1 to {width}, got {k!r}")
    return int(k)


def _check_n_relevant(n_relevant: np.ndarray, hits: np.ndarray) -> np.ndarray:
    n_relevant = np.asarray(n_relevant)
    if n_relevant.shape != (hits.shape[0],) or not np.issubdtype(n_relevant.dtype, np.integer):
        raise ValueError(f"n_relevant must be ({hits.shape[0]},) integers, one per row of hits")
    if np.any(n_relevant < 1):
        raise ValueError("every evaluated user needs at least one relevant item; leave the others out")
    if np.any(hits.sum(axis=1) > n_relevant):
        raise ValueError("a row has more hits than relevant items")
    return n_relevant
