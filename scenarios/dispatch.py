"""The one place where the scenarios app's Celery tasks are sent (see ``training.dispatch`` for why by name)."""

from celery.utils import uuid
from django.db import transaction

from recsys_site.celery import app

SLICE_REFRESH = "scenarios.slice_refresh"
TASK_NAMES = (SLICE_REFRESH,)


def scenario_slice_refresh_dispatch(*, scenario_id: int) -> str:
    """Recompute the scenario's stored slice size on a worker after commit; returns the task id it will have."""
    task_id = uuid()
    transaction.on_commit(lambda: app.send_task(SLICE_REFRESH, args=(scenario_id,), task_id=task_id))
    return task_id
