"""``auto``: not a model but the choice of one. A run of ``auto`` trains the applicable baselines with their
defaults, tunes the best of them within a budget and keeps the best on validation (``training.tuning.auto``);
this module holds its settings and the choices that depend on the data alone.

Which candidates apply: every baseline (popularity, item-kNN, EASE, iALS, BPR), and the sequential models
(GRU4Rec, SASRec) only when the events have order; under the rating objective, the models that predict ratings
(biased MF, neural MF) instead. The test for order: over the users with two or more training
events, the share of each user's successive events (in time) that happen at a later time than the one before
(:func:`event_order`). Events imported with one fixed time, or in batches stamped alike, share their times and
have no order to learn; MovieLens ratings, each at its own second, have. The slice has order when that share is
at least :data:`ORDER_SHARE_MIN`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from training.algorithms.base import ProgressCallback, Recommender, no_progress
from training.algorithms.params import HyperparameterError, Param
from training.algorithms.registry import register
from training.evaluation.objectives import objective_problem
from training.interactions import HeldOut, InteractionData

BASELINES = ("popularity", "item_knn", "ease", "ials", "bpr")  # cheapest first: they finish before the budget ends
SEQUENTIAL = ("gru4rec", "sasrec")
RATING = ("biased_mf", "neural_mf")  # the models that predict ratings, for a scenario under the rating objective
ORDER_SHARE_MIN = 0.5


@register
class Auto(Recommender):
    name = "auto"
    label = "Automatic choice"
    family = "choice"
    description = (
        "Trains the baselines (and the sequential models when the events have order) with their defaults, tunes "
        "the best of them within the budget, and keeps the run best on the validation objective."
    )
    chooses_model: ClassVar[bool] = True
    study_excluded: ClassVar[bool] = True
    params = (
        Param(
            "max_seconds",
            int,
            900,
            help="Wall-time budget in seconds (0: none; then max_trials bounds the search).",
            minimum=0,
            maximum=7 * 24 * 3600,
        ),
        Param(
            "max_trials", int, 0, help="Most runs trained, defaults included (0: no limit).", minimum=0, maximum=1000
        ),
        Param("tune_top", int, 2, help="How many algorithms, the best on defaults, are tuned.", minimum=1, maximum=7),
        Param(
            "objective",
            str,
            "",
            help=(
                "The validation figure the choice optimises: a metric@K such as ndcg@10 (maximised) or, under the "
                "rating objective, rmse or mae (minimised). Empty: rmse under the rating objective, else ndcg@10."
            ),
        ),
    )

    def __init__(self, params=None, *, device: str | torch.device = "cpu", seed: int = 0) -> None:
        super().__init__(params, device=device, seed=seed)
        errors = {}
        if not self.hparams["max_seconds"] and not self.hparams["max_trials"]:
            errors["max_seconds"] = "give a wall-time budget, a trial budget (max_trials) or both"
        problem = objective_problem(self.hparams["objective"]) if self.hparams["objective"] else None
        if problem:
            errors["objective"] = problem
        if errors:
            raise HyperparameterError(errors)

    def fit(
        self, data: InteractionData, progress: ProgressCallback = no_progress, *, validation: HeldOut | None = None
    ) -> None:
        raise TypeError("auto chooses among trained runs; it is not fitted as a model")

    def score(self, users: Sequence[int] | np.ndarray) -> torch.Tensor:
        raise TypeError("auto serves the run it chose")

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        return None


@dataclass(frozen=True)
class EventOrder:
    """The order test's measure: ``share`` of successive events at a later time, over ``users`` users."""

    share: float
    users: int

    @property
    def has_order(self) -> bool:
        return self.users > 0 and self.share >= ORDER_SHARE_MIN

    def as_dict(self) -> dict[str, Any]:
        return {"has_order": self.has_order, "share": round(self.share, 4), "users": self.users, "min": ORDER_SHARE_MIN}


def event_order(data: InteractionData) -> EventOrder:
    """For users with two or more events: (distinct times − 1) summed over users, over (events − 1) summed."""
    events = np.bincount(data.users, minlength=data.n_users)
    pairs = np.unique(np.stack([data.users, data.timestamps]), axis=1)
    distinct = np.bincount(pairs[0], minlength=data.n_users)
    repeat = events >= 2
    steps = int((events[repeat] - 1).sum())
    later = int((distinct[repeat] - 1).sum())
    return EventOrder(share=later / steps if steps else 0.0, users=int(repeat.sum()))


def candidates_for(order: EventOrder, *, ratings: bool = False) -> tuple[list[str], dict[str, str]]:
    """The algorithms ``auto`` trains, and each one left out with the reason; under the rating objective
    (``ratings``) only the models that predict ratings."""
    if ratings:
        why = "it does not predict ratings, and the scenario's objective is rating"
        return list(RATING), dict.fromkeys([*BASELINES, *SEQUENTIAL], why)
    if order.has_order:
        return [*BASELINES, *SEQUENTIAL], {}
    why = (
        f"the events have no order to learn: {order.share:.0%} of users' successive events are at a later time "
        f"(at least {ORDER_SHARE_MIN:.0%} needed)"
    )
    return list(BASELINES), dict.fromkeys(SEQUENTIAL, why)
