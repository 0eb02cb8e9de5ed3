"""The one place where the scenarios app's Celery tasks are sent (see ``training.dispatch`` for why by name).

The slice refresh uses the scenario row as its outbox: ``slice_requested_at`` is written with the request,
``slice_dispatched_at`` once a message reached the broker; the sweeper sends again a refresh that was asked
for and neither sent nor computed.
"""

import logging

from celery.utils import uuid
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from recsys_site.celery import app
from scenarios.models import Scenario

logger = logging.getLogger(__name__)

SLICE_REFRESH = "scenarios.slice_refresh"
TASK_NAMES = (SLICE_REFRESH,)


def scenario_slice_refresh_dispatch(*, scenario_id: int) -> str:
    """Record the request and send the refresh once the transaction commits; returns the task id it will have."""
    task_id = uuid()
    Scenario.objects.filter(pk=scenario_id).update(slice_requested_at=timezone.now(), slice_dispatched_at=None)
    transaction.on_commit(lambda: scenario_slice_refresh_send(scenario_id=scenario_id, task_id=task_id))
    return task_id


def scenario_slice_refresh_send(*, scenario_id: int, task_id: str | None = None) -> bool:
    """Send the refresh now and record it on the scenario; False when the broker refused it."""
    try:
        app.send_task(SLICE_REFRESH, args=(scenario_id,), task_id=task_id or uuid())
    except BrokerUnavailable as error:
        logger.warning("slice refresh of scenario %s not sent (the sweeper sends it again): %s", scenario_id, error)
        return False
    Scenario.objects.filter(pk=scenario_id).update(slice_dispatched_at=timezone.now())
    return True
