"""What the rating models share: they learn the training weights as explicit ratings, centred on their mean, stop
early on the validation RMSE, and predict ratings clipped to the training ratings' range."""

from __future__ import annotations

from abc import abstractmethod
from typing import NamedTuple

import numpy as np
import torch

from training.algorithms.base import EarlyStopping, ProgressCallback, Recommender, no_progress
from training.interactions import HeldOut, InteractionData, rating_pairs, rating_range


def rating_model_description(*, interaction: str, fitting: str) -> str:
    """The description of a rating model whose prediction adds ``interaction`` to the mean and the two biases, and
    which learns by ``fitting``; what every rating model does follows."""
    return (
        f"Predicts a rating as global mean + user bias + item bias + {interaction}, {fitting}; predictions are "
        "clipped to the training ratings' range. Ranks items by predicted rating. Early-stops on validation RMSE."
    )


class RatedPairs(NamedTuple):
    """The distinct rated pairs of the training data (:func:`rating_pairs`): ``(n,)`` int64 ``users`` and ``items``
    and float32 ``centred`` ratings, their mean taken away."""

    users: np.ndarray
    items: np.ndarray
    centred: np.ndarray


class RatingRecommender(Recommender):
    """A model of explicit ratings: :meth:`fit` reads the rated pairs and keeps their ``rating_range``
    (:func:`rating_range`), and the model learns the centred ratings in :meth:`fit_ratings`."""

    predicts_ratings = True
    rating_range: torch.Tensor

    def fit(
        self, data: InteractionData, progress: ProgressCallback = no_progress, *, validation: HeldOut | None = None
    ) -> None:
        """Learn from ``data``'s weights as ratings (a pair rated twice counts once, with the mean rating)."""
        self.n_users, self.n_items = data.n_users, data.n_items
        users, items, ratings = rating_pairs(data)
        mean, self.rating_range = rating_range(ratings, self.device)
        stopper = EarlyStopping.for_ratings(self, data, validation, patience=self.hparams["early_stopping_patience"])
        self.fit_ratings(RatedPairs(users, items, ratings - np.float32(mean)), stopper, progress)

    @abstractmethod
    def fit_ratings(self, pairs: RatedPairs, stopper: EarlyStopping, progress: ProgressCallback) -> None:
        """Learn the centred ratings of ``pairs``, reporting each epoch to ``stopper`` (which restores the best)."""
