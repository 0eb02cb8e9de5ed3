"""Celery tasks of the scenarios app: thin wrappers that re-read rows and call one service."""

import logging

from celery import shared_task

from scenarios.dispatch import SLICE_REFRESH
from scenarios.models import Scenario
from scenarios.services import scenario_slice_refresh

logger = logging.getLogger(__name__)


@shared_task(name=SLICE_REFRESH, acks_late=True, soft_time_limit=600, time_limit=660)
def scenario_slice_refresh_task(scenario_id: int) -> dict | None:
    """Recompute and store a scenario's slice size. Safe to run twice: it only overwrites counts."""
    scenario = Scenario.objects.filter(pk=scenario_id).first()
    if scenario is None:
        logger.warning("scenario %s vanished before its slice refresh ran", scenario_id)
        return None
    return scenario_slice_refresh(scenario=scenario)
