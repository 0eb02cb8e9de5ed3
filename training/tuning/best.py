"""A study's best trial: the leader on validation, unless its lead over the defaults is noise.

With dozens of trials, the one best on validation is partly the one luckiest on validation's users: on a small
data set a tuned trial can lead the defaults on validation and still test worse. So a tuned leader must beat the
best defaults trial by more than noise alone gives the best of that many tuned trials: √(2 ln n) standard errors
of their paired per-user difference on validation, n the tuned trials that succeeded (at least one standard error,
the one-standard-error rule; the defaults are the simpler choice). Else the defaults are kept. A rating error's
lead is weighed per rating, each user's sum of squared (RMSE) or absolute (MAE) errors paired, with the users'
ratings taken together in its standard error. Trials without a per-user validation vector (from before they were
kept) are judged on their means alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from training.evaluation.compare import Lead, align, noise_bound, paired_lead, pooled_lead
from training.evaluation.objectives import objective_ordering
from training.evaluation.rating import RATING_METRICS
from training.models import RunEvaluation, RunStatus, Study, TrainingRun


@dataclass(frozen=True)
class BestChoice:
    """The chosen trial, the leader on validation (the same unless its lead was noise) and why."""

    run: TrainingRun
    leader: TrainingRun
    lead: Lead | None
    reason: str


def is_defaults_trial(study: Study, run: TrainingRun) -> bool:
    """Whether ``run`` is the study's trial of one algorithm on its defaults (the first of each algorithm)."""
    return (run.trial_number or 0) < len(study.algorithms)


def best_choice(study: Study, trials: Sequence[TrainingRun]) -> BestChoice | None:
    """The study's best trial among ``trials`` (None while none has succeeded), as the module says."""
    objective = study.objective
    scored = [run for run in trials if run.status == RunStatus.SUCCEEDED and objective in run.validation_metrics]
    if not scored:
        return None
    ranked = sorted(scored, key=lambda run: (objective_ordering(objective, run.validation_metrics[objective]), _n(run)))
    leader = ranked[0]
    value = f"validation {objective} ({leader.validation_metrics[objective]:.4f})"
    if is_defaults_trial(study, leader):
        return BestChoice(leader, leader, None, f"trial {_n(leader)} is the best on {value}, on its defaults")
    reference = next((run for run in ranked if is_defaults_trial(study, run)), None)
    if reference is None:
        reason = f"trial {_n(leader)} is the best on {value}; no defaults trial succeeded to weigh its lead against"
        return BestChoice(leader, leader, None, reason)
    lead = _lead(objective, reference, leader)
    if lead is None:
        reason = f"trial {_n(leader)} is the best on {value}; no per-user validation to weigh its lead against noise"
        return BestChoice(leader, leader, None, reason)
    defaults = f"the defaults of {reference.algorithm} (trial {_n(reference)})"
    tuned = sum(not is_defaults_trial(study, run) for run in scored)
    errors = noise_bound(tuned)
    spread = (
        f"{errors:.2f} standard errors ({lead.standard_error:.4f} each, {lead.n_users} users), "
        f"as far as noise alone reaches among {tuned} tuned trial{'s' if tuned > 1 else ''}"
    )
    by = _by(objective, lead)
    if lead.beyond(errors):
        reason = f"trial {_n(leader)} leads {defaults} on validation {objective} by {by}"
        return BestChoice(leader, leader, lead, f"{reason}, more than {spread}")
    reason = f"trial {_n(leader)} led on validation {objective} by {by}, within {spread}: {defaults} are kept"
    return BestChoice(reference, leader, lead, reason)


def _lead(objective: str, reference: TrainingRun, leader: TrainingRun) -> Lead | None:
    """How far ``leader`` leads ``reference`` on their common validation users (None without both vectors), signed
    so that a better leader leads by a positive amount."""
    evaluations = {
        evaluation.run_id: evaluation
        for evaluation in RunEvaluation.objects.filter(run__in=[reference, leader]).only(
            "run_id", "validation_user_ids", "validation_vectors"
        )
    }
    if len(evaluations) < 2 or any(objective not in row.validation_vectors for row in evaluations.values()):
        return None
    base, other = evaluations[reference.pk], evaluations[leader.pk]
    a, b = align(
        base.validation_user_ids,
        base.validation_vectors[objective],
        other.validation_user_ids,
        other.validation_vectors[objective],
    )
    if len(a) < 2:
        return None
    sign = 1.0 if objective_ordering(objective, 1.0) < 0 else -1.0  # maximised: +, minimised: -
    if objective in RATING_METRICS:  # per-user sums of errors, over so many ratings (the same in both runs)
        if "ratings" not in base.validation_vectors or "ratings" not in other.validation_vectors:
            return None
        counts, _ = align(
            base.validation_user_ids,
            base.validation_vectors["ratings"],
            other.validation_user_ids,
            other.validation_vectors["ratings"],
        )
        return pooled_lead(sign * a, sign * b, counts)
    return paired_lead(sign * a, sign * b)


def _by(objective: str, lead: Lead) -> str:
    """The lead in words: a ranking metric's per-user difference, or how much less error per rating."""
    error = {"rmse": "squared error", "mae": "absolute error"}.get(objective)
    if error is None:
        return f"{lead.mean_difference:+.4f}"
    return f"{abs(lead.mean_difference):.4f} {'less' if lead.mean_difference >= 0 else 'more'} {error} per rating"


def _n(run: TrainingRun) -> int:
    return run.trial_number or 0
