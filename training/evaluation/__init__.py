"""Offline evaluation in plain NumPy and PyTorch (no Django imports): splits, metrics and full ranking."""

from training.evaluation.metrics import (
    RANKING_METRICS,
    average_popularity,
    catalog_coverage,
    hit_rate_at_k,
    map_at_k,
    mean_metrics,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
    relevance_hits,
)
from training.evaluation.ranking import evaluate, mean_ndcg, top_k_items
from training.evaluation.splits import (
    Split,
    select_events,
    split_leave_last_out,
    split_random,
    split_temporal,
)

__all__ = [
    "RANKING_METRICS",
    "Split",
    "average_popularity",
    "catalog_coverage",
    "evaluate",
    "hit_rate_at_k",
    "map_at_k",
    "mean_metrics",
    "mean_ndcg",
    "mrr_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
    "relevance_hits",
    "select_events",
    "split_leave_last_out",
    "split_random",
    "split_temporal",
    "top_k_items",
]
