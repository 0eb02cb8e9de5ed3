"""Scoring from a history given at request time instead of the one frozen at training (no Django imports).

A :class:`History` is a user's (or an anonymous session's) latest events as the model's dense item indexes,
oldest first, with each event's weight. :func:`history_scores` scores every item from it the way the model
scores its training users:

- item-kNN and EASE: the binary history vector times the item-item matrix (EASE sums the history's rows; EASE
  adapted per member keeps the member's items);
- content: the recency-weighted content profile (``half_life``, optionally the event weights), as in training;
- content ridge: ``[Σ content of the history, 1] @ W`` with the fitted map ``W``;
- iALS and BPR: fold-in, the user factor solved from the history against the fixed item factors
  (:func:`fold_in`);
- SASRec, GRU4Rec, STAR and the distilled students: a forward pass over the latest ``max_length`` events;
- popularity: its item scores, whatever the history.

:func:`new_item_scores` scores items the model never saw from their content features, for the models that can
(content, content ridge, and the sequential hybrids: SASRec, GRU4Rec and STAR with content ``side`` or ``prior``);
the others (content ``none`` or ``init``, the distilled students, the factor and item-item models) return ``None``
and such items are not candidates.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from training.algorithms.adapted_ease import AdaptedEASE
from training.algorithms.base import DotProductRecommender, Recommender
from training.algorithms.biased_mf import BiasedMF
from training.algorithms.blend import Blend
from training.algorithms.bpr import BPR
from training.algorithms.content import ContentRecommender
from training.algorithms.content_ridge import ContentRidge, project_content
from training.algorithms.ease import EASE
from training.algorithms.ials import IALS
from training.algorithms.item_knn import ItemKNN
from training.algorithms.popularity import Popularity
from training.algorithms.sequential import SequentialRecommender
from training.evaluation.blending import per_user_normalised

# Fold-in for BPR, whose loss has no confidence or ridge of its own: iALS's solve with confidence 1 + alpha on the
# history's items, and λ this share of the item factors' mean eigenvalue (ranking ignores the factor's scale).
BPR_FOLD_IN_ALPHA = 10.0
BPR_FOLD_IN_RELATIVE_L2 = 0.1


@dataclass(frozen=True)
class History:
    """``items`` ``(n,)`` int64 dense item indexes, oldest first (repeats allowed); ``weights`` ``(n,)`` float32."""

    items: np.ndarray
    weights: np.ndarray

    def __post_init__(self) -> None:
        if self.items.shape != self.weights.shape or self.items.ndim != 1:
            raise ValueError("items and weights must be 1-D arrays of the same length")

    def __len__(self) -> int:
        return len(self.items)

    def binary(self, n_items: int, device: torch.device) -> torch.Tensor:
        """``(n_items,)`` float32: 1 for each item in the history."""
        vector = torch.zeros(n_items, device=device)
        vector[torch.from_numpy(self.items).to(device)] = 1.0
        return vector


Scorer = Callable[[Any, History, dict], torch.Tensor | None]


def history_scores(model: Recommender, history: History, *, domain: int | None = None) -> torch.Tensor | None:
    """Every item's score after ``history``: float32 ``(n_items,)`` on the CPU; ``None`` for a model that can only
    score its training users. ``domain``: a multi-domain model's (STAR) domain."""
    if len(history) and (history.items.min() < 0 or history.items.max() >= model.n_items):
        raise ValueError(f"item index out of range 0..{model.n_items - 1}")
    if isinstance(model, ContentRidge) and model.query_map is None:
        return None  # an artifact saved before the fitted map was kept: only its training users can be scored
    for kind, scorer in _SCORERS:
        if isinstance(model, kind):
            with torch.no_grad():
                scores = scorer(model, history, {} if domain is None else {"domain": domain})
                return None if scores is None else scores.float().cpu()
    return None


def scores_new_items(model: Recommender) -> bool:
    """Whether :func:`new_item_scores` can score items the model never saw (from their content)."""
    if isinstance(model, ContentRidge):
        return model.query_map is not None and model.content_basis is not None
    if isinstance(model, SequentialRecommender):
        return model.network is not None and model.network.places_new_items()
    return isinstance(model, ContentRecommender)


def new_item_scores(
    model: Recommender, history: History | None, features: np.ndarray, *, domain: int | None = None
) -> torch.Tensor | None:
    """Scores ``(n_new,)`` of items added after training, from their content ``features`` ``(n_new, f)`` (zero rows:
    no content), after ``history`` (``None``: the empty history), as the model scores an item of that content:
    content and content ridge as any item; the sequential hybrids (content ``side`` or ``prior``) as an item
    without training events. ``domain``: a multi-domain model's (STAR). ``None`` for a model that cannot."""
    if not scores_new_items(model):
        return None
    content = torch.from_numpy(features).float().to(model.device)
    with torch.no_grad():
        if isinstance(model, ContentRecommender):
            return (F.normalize(content, dim=1) @ _content_profile(model, history)).cpu()
        if isinstance(model, ContentRidge):
            vectors = project_content(content, model.content_mean, model.content_basis)
            return (vectors @ _ridge_query(model, history)).cpu()
    assert isinstance(model, SequentialRecommender)
    sequence = [] if history is None else history.items.tolist()
    scores = model.score_new_items([sequence], content, **({} if domain is None else {"domain": domain}))
    return None if scores is None else scores[0]


def _item_knn(model: ItemKNN, history: History, _: dict) -> torch.Tensor:
    vector = history.binary(model.n_items, model.device)
    return torch.sparse.mm(model.similarity, vector[:, None])[:, 0]


def _adapted_ease(model: AdaptedEASE, history: History, extra: dict) -> torch.Tensor:
    return model.within_member(_ease(model, history, {}), **extra)


def _ease(model: EASE, history: History, _: dict) -> torch.Tensor:
    """The binary history vector times ``B``, as the sum of the history's distinct rows of ``B``: a request reads
    ``len(history)`` rows, not the whole ``(n_items, n_items)`` matrix, summed as they are read (no copy of them)."""
    rows = torch.from_numpy(np.unique(history.items)).to(model.device)
    return F.embedding_bag(rows[None], model.weights, mode="sum")[0]


def _content(model: ContentRecommender, history: History, _: dict) -> torch.Tensor:
    return model.item_embeddings @ _content_profile(model, history)


def _content_profile(model: ContentRecommender, history: History | None) -> torch.Tensor:
    """The unit profile ``(f,)``: the ``r``-th latest event weighs ``0.5 ** (r / half_life)`` (times its weight)."""
    if history is None or not len(history):
        return model.item_embeddings.new_zeros(model.item_embeddings.shape[1])
    recency = np.power(0.5, np.arange(len(history))[::-1] / model.hparams["half_life"])
    if model.hparams["use_event_weights"]:
        recency = recency * history.weights
    weights = torch.from_numpy(recency.astype(np.float32)).to(model.device)
    items = torch.from_numpy(history.items).to(model.device)
    return F.normalize(weights @ model.item_embeddings[items], dim=0)


def _content_ridge(model: ContentRidge, history: History, _: dict) -> torch.Tensor:
    return model.item_content @ _ridge_query(model, history)


def _ridge_query(model: ContentRidge, history: History | None) -> torch.Tensor:
    """``[Σ content of the history's items, 1] @ W``; each distinct item counts once, or its summed event weight."""
    profile = model.item_content.new_zeros(model.item_content.shape[1])
    if history is not None and len(history):
        items, inverse = np.unique(history.items, return_inverse=True)
        counts = np.bincount(inverse, weights=history.weights) if model.hparams["use_event_weights"] else None
        summed = torch.from_numpy(np.ones(len(items)) if counts is None else counts).float().to(model.device)
        profile = summed @ model.item_content[torch.from_numpy(items).to(model.device)]
    return model.fitted().queries(profile)


def _factors(model: DotProductRecommender, history: History, _: dict) -> torch.Tensor:
    items = model.item_vectors()
    return items @ fold_in(model, history)


def fold_in(model: DotProductRecommender, history: History) -> torch.Tensor:
    """The user factor ``(f,)`` from ``history``'s distinct items: ``(YᵀY + α Σ y_i y_iᵀ + λI) x = (1 + α) Σ y_i``,
    iALS's user step (its own ``alpha`` and ``regularization``; BPR: :data:`BPR_FOLD_IN_ALPHA` and a λ relative to
    its item factors). ``YᵀY`` is computed once per loaded model."""
    items = model.item_vectors().float()
    gram, alpha, l2 = _fold_in_constants(model)
    if not len(history):
        return items.new_zeros(items.shape[1])
    mine = items[torch.from_numpy(np.unique(history.items)).to(items.device)]
    lhs = gram + alpha * mine.T @ mine + l2 * torch.eye(len(gram), device=items.device)
    rhs = (1.0 + alpha) * mine.sum(0)
    return torch.linalg.solve(lhs.double(), rhs.double()).float()


_fold_in_cache: weakref.WeakKeyDictionary[Recommender, tuple[torch.Tensor, float, float]] = weakref.WeakKeyDictionary()


def _fold_in_constants(model: DotProductRecommender) -> tuple[torch.Tensor, float, float]:
    cached = _fold_in_cache.get(model)
    if cached is None:
        items = model.item_vectors().float()
        gram = items.T @ items
        if isinstance(model, IALS):
            alpha, l2 = float(model.hparams["alpha"]), float(model.hparams["regularization"])
        else:
            alpha = BPR_FOLD_IN_ALPHA
            l2 = BPR_FOLD_IN_RELATIVE_L2 * float(gram.diagonal().mean()) + 1e-6
        cached = _fold_in_cache[model] = (gram, alpha, l2)
    return cached


def _sequential(model: SequentialRecommender, history: History, extra: dict) -> torch.Tensor:
    return model.score_sequences([history.items.tolist()], **extra)[0]


def _popularity(model: Popularity, history: History, _: dict) -> torch.Tensor:
    return model.item_scores


def _biased_mf(model: BiasedMF, history: History, _: dict) -> torch.Tensor:
    return model.history_ratings(history.items, history.weights)


def _blend(model: Blend, history: History, kwargs: dict) -> torch.Tensor | None:
    """Each member's live scores, normalised as the blend normalises a training user's, mixed by its weights; a
    member that cannot score live histories makes the blend unable to (``history_scores`` answers ``None``)."""
    parts = [history_scores(member, history, **kwargs) for member in model.members]
    scored = [part for part in parts if part is not None]
    if len(scored) < len(parts):
        return None
    mixed = [w * per_user_normalised(part[None, :])[0] for w, part in zip(model.weights, scored, strict=True)]
    return torch.stack(mixed).sum(dim=0)


_SCORERS: tuple[tuple[type, Scorer], ...] = (
    (BiasedMF, _biased_mf),
    (Blend, _blend),
    (ItemKNN, _item_knn),
    (AdaptedEASE, _adapted_ease),
    (EASE, _ease),
    (ContentRidge, _content_ridge),
    (ContentRecommender, _content),
    (IALS, _factors),
    (BPR, _factors),
    (SequentialRecommender, _sequential),
    (Popularity, _popularity),
)
