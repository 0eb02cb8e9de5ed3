"""Rating-prediction errors: how far predicted ratings fall from held-out ones (explicit feedback).

``rmse`` and ``mae`` are pure NumPy functions over parallel ``(n,)`` arrays; :func:`rating_errors` asks a
model for its predictions of a :class:`HeldOut` set's pairs and compares them with the set's values, and
:func:`rating_errors_by_user` keeps each user's sums of errors.
Both errors are in the ratings' own unit, from 0 (every prediction exact) upwards.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from training.interactions import HeldOut

RATING_METRICS = ("rmse", "mae")


class RatingPredictor(Protocol):
    """What rating evaluation needs of a model: predictions for (user, item) pairs."""

    def predict_ratings(self, users: np.ndarray, items: np.ndarray) -> torch.Tensor:
        """Predicted ratings of the pairs ``(users[j], items[j])``: float32 ``(n,)`` on the CPU."""
        ...


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Root mean squared error of ``predicted`` against ``actual`` (``(n,)`` each, n ≥ 1)."""
    predicted, actual = _check_pair(predicted, actual)
    return float(np.sqrt(np.mean(np.square(predicted - actual))))


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute error of ``predicted`` against ``actual`` (``(n,)`` each, n ≥ 1)."""
    predicted, actual = _check_pair(predicted, actual)
    return float(np.mean(np.abs(predicted - actual)))


def rating_errors(model: RatingPredictor, heldout: HeldOut, *, batch_size: int = 65536) -> dict[str, float]:
    """``{"rmse", "mae"}`` of ``model``'s predictions of every held-out pair against its value; ``{}`` when the
    set is empty or carries no values."""
    return errors_of_sums(rating_errors_by_user(model, heldout, batch_size=batch_size))


def rating_errors_by_user(model: RatingPredictor, heldout: HeldOut, *, batch_size: int = 65536) -> dict[str, list]:
    """Each held-out user's sums of squared errors (``rmse``) and of absolute errors (``mae``) and its count of
    ratings (``ratings``), for the users with any (``users``, their indexes): the paired terms that tell whether one
    model's lower error is more than noise (:func:`training.evaluation.compare.pooled_lead`). ``{}`` as
    :func:`rating_errors`; :func:`errors_of_sums` turns them into the two errors."""
    if heldout.values is None or heldout.n_pairs == 0:
        return {}
    users, items = heldout.pairs()
    predicted = np.concatenate(
        [
            model.predict_ratings(users[start : start + batch_size], items[start : start + batch_size]).numpy()
            for start in range(0, len(users), batch_size)
        ]
    )
    predicted, actual = _check_pair(predicted, heldout.values)
    held, index = np.unique(users, return_inverse=True)
    error = predicted - actual
    return {
        "users": held.tolist(),
        "rmse": np.bincount(index, weights=np.square(error)).tolist(),
        "mae": np.bincount(index, weights=np.abs(error)).tolist(),
        "ratings": np.bincount(index).tolist(),
    }


def errors_of_sums(by_user: dict[str, list]) -> dict[str, float]:
    """``{"rmse", "mae"}`` over every rating of :func:`rating_errors_by_user`'s per-user sums (``{}`` for none)."""
    if not by_user:
        return {}
    ratings = float(np.sum(by_user["ratings"]))
    return {"rmse": float(np.sqrt(np.sum(by_user["rmse"]) / ratings)), "mae": float(np.sum(by_user["mae"]) / ratings)}


def _check_pair(predicted: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    predicted, actual = np.asarray(predicted, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    if predicted.ndim != 1 or predicted.shape != actual.shape:
        raise ValueError(f"predicted and actual must be 1-D of one length, got {predicted.shape} and {actual.shape}")
    if not len(predicted):
        raise ValueError("at least one rating is needed")
    if not (np.isfinite(predicted).all() and np.isfinite(actual).all()):
        raise ValueError("ratings must be finite numbers")
    return predicted, actual
