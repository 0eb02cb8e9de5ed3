"""Ranking metrics against values computed by hand, and their input validation."""

import math

import numpy as np
import pytest
import torch

from training.algorithms.base import Recommender
from training.evaluation.metrics import (
    average_popularity,
    catalog_coverage,
    hit_rate_at_k,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
    relevance_hits,
)
from training.evaluation.ranking import evaluate, top_k_items
from training.interactions import HeldOut, InteractionData

# User 0: relevant {1, 3}, top-3 [3, 5, 1] -> hits at ranks 1 and 3.
# User 1: relevant {4}, top-3 [0, 4, 2] -> hit at rank 2.
# User 2: relevant {7, 8, 9, 6}, top-3 [0, 1, 2] -> no hit.
RECOMMENDED = np.array([[3, 5, 1], [0, 4, 2], [0, 1, 2]])
RELEVANT = [[1, 3], [4], [7, 8, 9, 6]]


@pytest.fixture
def hits():
    return relevance_hits(RECOMMENDED, RELEVANT)


def test_relevance_hits_marks_relevant_positions(hits):
    marked, n_relevant = hits
    assert marked.tolist() == [[True, False, True], [False, True, False], [False, False, False]]
    assert n_relevant.tolist() == [2, 1, 4]


def test_precision(hits):
    marked, _ = hits
    # @3: 2/3, 1/3, 0.  @1: 1, 0, 0.
    assert precision_at_k(marked, 3) == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert precision_at_k(marked, 1) == pytest.approx([1.0, 0.0, 0.0])


def test_recall(hits):
    # @3: 2/2, 1/1, 0/4.  @2: 1/2, 1/1, 0.
    assert recall_at_k(*hits, 3) == pytest.approx([1.0, 1.0, 0.0])
    assert recall_at_k(*hits, 2) == pytest.approx([0.5, 1.0, 0.0])


def test_ndcg(hits):
    # User 0: DCG = 1/log2(2) + 1/log2(4) = 1.5; ideal over min(2, 3) = 2 hits: 1 + 1/log2(3).
    # User 1: DCG = 1/log2(3); ideal over 1 hit: 1.
    # @1 user 0: DCG 1, ideal 1 (min(2, 1) = 1 hit).
    assert ndcg_at_k(*hits, 3) == pytest.approx([1.5 / (1 + 1 / math.log2(3)), 1 / math.log2(3), 0.0])
    assert ndcg_at_k(*hits, 1) == pytest.approx([1.0, 0.0, 0.0])


def test_map(hits):
    # User 0 @3: precision at hit ranks 1 and 3 is 1/1 and 2/3; sum 5/3 over min(2, 3) = 2 -> 5/6.
    # User 1 @3: precision at rank 2 is 1/2, over min(1, 3) = 1 -> 1/2.
    # User 0 @2: precision at rank 1 is 1, over min(2, 2) = 2 -> 1/2.
    assert map_at_k(*hits, 3) == pytest.approx([5 / 6, 0.5, 0.0])
    assert map_at_k(*hits, 2) == pytest.approx([0.5, 0.5, 0.0])


def test_mrr_and_hit_rate(hits):
    marked, _ = hits
    assert mrr_at_k(marked, 3) == pytest.approx([1.0, 0.5, 0.0])
    assert mrr_at_k(marked, 1) == pytest.approx([1.0, 0.0, 0.0])
    assert hit_rate_at_k(marked, 3).tolist() == [1.0, 1.0, 0.0]
    assert hit_rate_at_k(marked, 1).tolist() == [1.0, 0.0, 0.0]


def test_ranking_metrics_names_every_metric_at_every_cut_off(hits):
    result = ranking_metrics(*hits, [1, 3])
    assert set(result) == {
        f"{metric}@{k}" for metric in ("precision", "recall", "ndcg", "map", "mrr", "hit") for k in (1, 3)
    }
    assert result["ndcg@3"] == pytest.approx(ndcg_at_k(*hits, 3))


def test_coverage_and_average_popularity():
    # Distinct items in the top-3s: {0, 1, 2, 3, 4, 5} -> 6 of 10; in the top-1s: {3, 0} -> 2 of 10.
    assert catalog_coverage(RECOMMENDED, 10) == pytest.approx(0.6)
    assert catalog_coverage(RECOMMENDED, 10, k=1) == pytest.approx(0.2)
    popularity = np.arange(10) * 10.0  # item i has popularity 10·i
    # User 0: (30 + 50 + 10) / 3 = 30; user 1: (0 + 40 + 20) / 3 = 20; user 2: (0 + 10 + 20) / 3 = 10.
    assert average_popularity(RECOMMENDED, popularity).tolist() == pytest.approx([30.0, 20.0, 10.0])
    assert average_popularity(RECOMMENDED, popularity, k=1).tolist() == pytest.approx([30.0, 0.0, 0.0])


@pytest.mark.parametrize("k", [0, -1, 4, 2.0, True])
def test_cut_offs_outside_one_to_k_are_refused(hits, k):
    with pytest.raises(ValueError, match="k must be"):
        precision_at_k(hits[0], k)


def test_mismatched_shapes_are_refused(hits):
    marked, n_relevant = hits
    with pytest.raises(ValueError, match="n_relevant"):
        recall_at_k(marked, n_relevant[:2], 3)
    with pytest.raises(ValueError, match="relevant has 2 users"):
        relevance_hits(RECOMMENDED, RELEVANT[:2])
    with pytest.raises(ValueError, match="bool"):
        precision_at_k(marked.astype(int), 3)
    with pytest.raises(ValueError, match=r"\(n_users, K\)"):
        relevance_hits(np.array([1, 2, 3]), [[1]])


def test_users_without_relevant_items_or_with_repeated_recommendations_are_refused(hits):
    with pytest.raises(ValueError, match="at least one relevant item"):
        ndcg_at_k(hits[0], np.array([2, 0, 4]), 3)
    with pytest.raises(ValueError, match="more hits than relevant"):
        recall_at_k(hits[0], np.array([1, 1, 4]), 3)
    with pytest.raises(ValueError, match="repeat"):
        relevance_hits(np.array([[1, 1, 2]]), [[1]])
    with pytest.raises(ValueError, match="out of range"):
        catalog_coverage(RECOMMENDED, 5)


class FixedScores(Recommender):
    """A stand-in model whose scores are given."""

    name, label, family = "fixed", "Fixed", "baseline"

    def __init__(self, scores: np.ndarray) -> None:
        super().__init__()
        self.scores = scores
        self.n_users, self.n_items = scores.shape

    def fit(self, data, progress=None, *, validation=None):
        raise NotImplementedError

    def score(self, users):
        return torch.from_numpy(self.scores[np.asarray(users)]).float()

    def state_tensors(self):
        return {}

    def load_state_tensors(self, tensors):
        return None


def tiny_train() -> InteractionData:
    # User 0 has item 0, user 1 has items 1 and 2.
    return InteractionData(
        n_users=2,
        n_items=5,
        users=np.array([0, 1, 1]),
        items=np.array([0, 1, 2]),
        weights=np.ones(3, dtype=np.float32),
        timestamps=np.arange(3),
    )


def test_top_k_masks_training_and_excluded_items():
    model = FixedScores(np.array([[5.0, 4, 3, 2, 1], [5.0, 4, 3, 2, 1]]))
    train = tiny_train()
    assert top_k_items(model, train, np.array([0, 1]), k=2).tolist() == [[1, 2], [0, 3]]
    exclude = HeldOut.from_pairs(2, 5, np.array([0]), np.array([1]))
    assert top_k_items(model, train, np.array([0, 1]), k=2, exclude=exclude).tolist() == [[2, 3], [0, 3]]


def test_evaluate_returns_means_coverage_popularity_and_per_user_vectors():
    model = FixedScores(np.array([[5.0, 4, 3, 2, 1], [5.0, 4, 3, 2, 1]]))
    # User 0 ranks [1, 2, 3, 4] and holds out item 2 (rank 2); user 1 ranks [0, 3, 4] and holds out item 4 (rank 3).
    heldout = HeldOut.from_pairs(2, 5, np.array([0, 1]), np.array([2, 4]))
    result = evaluate(model, tiny_train(), heldout, ks=[1, 2])
    assert result["ks"] == [1, 2] and result["n_users"] == 2
    assert result["per_user"]["users"] == [0, 1]
    assert result["per_user"]["hit@2"] == [1.0, 0.0]
    assert result["metrics"]["mrr@2"] == pytest.approx(0.25)
    # Top-2s [1, 2] and [0, 3]: 4 of 5 items; training popularity is [1, 1, 1, 0, 0].
    assert result["metrics"]["coverage@2"] == pytest.approx(0.8)
    assert result["metrics"]["average_popularity@2"] == pytest.approx((1.0 + 0.5) / 2)
