"""What a study or an ``auto`` run optimises on validation: a ranking metric at K (the higher the better) or, under
a scenario's rating objective, an error of the predicted ratings (``rmse`` or ``mae``, the lower the better).

Pure functions, no Django: the scenario's objective comes in as ``ratings`` (whether its models learn the events'
values as ratings). A rating error needs a rating scenario, whose models all predict ratings; a ranking metric fits
every scenario (rating models also rank).
"""

from __future__ import annotations

from typing import Literal

from training.evaluation.metrics import RANKING_METRICS
from training.evaluation.rating import RATING_METRICS

RANKING_DEFAULT, RATING_DEFAULT = "ndcg@10", "rmse"


def objective_default(*, ratings: bool) -> str:
    """Validation RMSE under the rating objective, else validation NDCG@10."""
    return RATING_DEFAULT if ratings else RANKING_DEFAULT


def objective_lower_is_better(objective: str) -> bool:
    return objective in RATING_METRICS


def objective_direction(objective: str) -> Literal["minimize", "maximize"]:
    """Optuna's name for the direction: ``"minimize"`` for an error, ``"maximize"`` for a ranking metric."""
    return "minimize" if objective_lower_is_better(objective) else "maximize"


def objective_ordering(objective: str, value: float) -> float:
    """A key that sorts values of ``objective`` best first (ascending)."""
    return value if objective_lower_is_better(objective) else -value


def objective_k(objective: str) -> int | None:
    """The cut-off of a ranking objective (``ndcg@10`` → 10); None for a rating error."""
    _, _, k = objective.partition("@")
    return int(k) if k.isdigit() else None


def objective_problem(objective: str, *, ratings: bool | None = None) -> str | None:
    """Why ``objective`` cannot be optimised (None when it can); ``ratings=None`` checks its form only."""
    if objective in RATING_METRICS:
        if ratings is False:
            return f"{objective} measures predicted ratings: only a scenario under the rating objective has them"
        return None
    metric, _, k = objective.partition("@")
    if metric not in RANKING_METRICS or not k.isdigit() or int(k) < 1:
        return (
            f"a metric@K: one of {', '.join(RANKING_METRICS)} at a positive K, e.g. ndcg@10; or, under the rating "
            f"objective, {' or '.join(RATING_METRICS)}"
        )
    return None
