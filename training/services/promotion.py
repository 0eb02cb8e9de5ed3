"""Which run serves a scenario: promoting a succeeded run and rolling back to the one before."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from recsys_site.errors import Conflict, ValidationFailed
from recsys_site.serving_version import serving_version_bump
from scenarios.models import Scenario
from training.models import Promotion, PromotionAction, RunStatus, TrainingRun
from training.selectors import rollback_target


@transaction.atomic
def training_run_promote(
    *, run: TrainingRun, actor: Any = None, scenario: Scenario | None = None, force: bool = False, reason: str = ""
) -> Promotion:
    """Make a succeeded run the live model of its scenario (or of a member of it), recording who replaced what
    and why.

    A run of a group scenario may serve a member (a STAR model serves each member with its own domain). A run
    tested on few users (``low_evidence``) is promoted only with ``force``: its metrics cannot support the choice.
    Promoting a succeeded ``auto`` run puts the run it chose live, with its reason unless one is given.
    """
    if run.status == RunStatus.SUCCEEDED and run.chosen_run is not None:
        reason = reason.strip() or f"chosen by auto run {run.pk}: {run.selection.get('reason', '')}"
        run = run.chosen_run
    if run.status != RunStatus.SUCCEEDED:
        raise Conflict(f"only a succeeded run can be promoted; run {run.pk} is {run.status}")
    if not run.artifact_path:
        raise Conflict(f"run {run.pk} has no artifact any more (deleted by the retention policy): retrain to serve it")
    if run.low_evidence and not force:
        raise Conflict(
            f"run {run.pk} was tested on {run.evaluated_users} users (fewer than "
            f"{settings.RECSYS_LOW_EVIDENCE_USERS}): its metrics are low evidence; promote with force to confirm"
        )
    target = Scenario.objects.select_for_update().get(pk=(scenario or run.scenario).pk)
    if target.pk != run.scenario_id and target.parent_id != run.scenario_id:
        raise ValidationFailed(
            "bad target", detail={"scenario": [f"run {run.pk} belongs to neither {target.slug} nor its group"]}
        )
    if target.live_run_id == run.pk:
        raise Conflict(f"run {run.pk} is already live for {target.slug}")
    return _switch_live(target, run, PromotionAction.PROMOTE, actor=actor, reason=reason)


@transaction.atomic
def scenario_rollback(*, scenario: Scenario, actor: Any = None, reason: str = "") -> Promotion:
    """Put back the run that was live before the current one. Each rollback goes one step further back in the
    history (a promotion pushes a run, a rollback pops one), never forward to the run it just replaced."""
    scenario = Scenario.objects.select_for_update().get(pk=scenario.pk)
    previous = rollback_target(scenario=scenario)
    if previous is None:
        raise Conflict(f"{scenario.slug} has no earlier live model to roll back to")
    if previous.status != RunStatus.SUCCEEDED:
        raise Conflict(f"the earlier live run {previous.pk} is {previous.status}")
    return _switch_live(scenario, previous, PromotionAction.ROLLBACK, actor=actor, reason=reason)


def _switch_live(scenario: Scenario, run: TrainingRun, action: str, *, actor: Any, reason: str) -> Promotion:
    promotion = Promotion.objects.create(
        scenario=scenario,
        run=run,
        previous_run_id=scenario.live_run_id,
        action=action,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        reason=reason.strip(),
    )
    Scenario.objects.filter(pk=scenario.pk).update(live_run=run)
    serving_version_bump()
    return promotion
