"""Celery tasks of training: thin wrappers around ``training.services``.

The run row is the source of truth: the task claims it with a conditional update, so a
redelivered or duplicated message finds the run already claimed and does nothing.
CUDA is only touched here, inside the pool process that executes the task, never in the
worker's parent process (CUDA does not survive a fork).
"""

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError

from training.models import RunStatus, TrainingRun
from training.services import training_run_execute, training_runs_reap

logger = logging.getLogger(__name__)


@shared_task(
    name="training.run",
    bind=True,
    acks_late=True,  # safe: a second delivery finds the run claimed and returns
    reject_on_worker_lost=False,
    soft_time_limit=settings.RECSYS_TRAINING_SOFT_TIME_LIMIT,
    time_limit=settings.RECSYS_TRAINING_SOFT_TIME_LIMIT + 300,
    autoretry_for=(OperationalError, InterfaceError),  # the database blinked before the run was claimed
    retry_backoff=5,
    retry_backoff_max=60,
    max_retries=3,
)
def training_run_task(self, run_id: int) -> str:
    queue = (self.request.delivery_info or {}).get("routing_key") or "cpu"
    try:
        device = _device_for(queue)
    except RuntimeError as error:
        TrainingRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(status=RunStatus.FAILED, error=str(error))
        return RunStatus.FAILED
    try:
        return training_run_execute(run_id=run_id, device=device)
    except SoftTimeLimitExceeded:
        TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
            status=RunStatus.FAILED, error=f"time limit of {settings.RECSYS_TRAINING_SOFT_TIME_LIMIT} s exceeded"
        )
        return RunStatus.FAILED


def _device_for(queue: str) -> str:
    import torch

    if queue == "gpu":
        if not torch.cuda.is_available():
            raise RuntimeError("this worker serves the gpu queue but sees no CUDA device")
        return "cuda"
    return "cpu"


@shared_task(name="training.reap_runs", acks_late=True, soft_time_limit=60, time_limit=90)
def training_runs_reap_task() -> list[int]:
    return training_runs_reap()


@shared_task(name="training.scheduled_retrain", acks_late=False, soft_time_limit=60, time_limit=90)
def scheduled_retrain_task(scenario_id: int) -> int | None:
    """Queue a retrain of a scenario on its schedule (the run itself executes as training.run)."""
    from scenarios.models import Scenario
    from training.services import training_run_create

    scenario = Scenario.objects.filter(pk=scenario_id).first()
    if scenario is None:
        logger.warning("scheduled retrain of a deleted scenario %s", scenario_id)
        return None
    return training_run_create(scenario=scenario).pk


# Celery's autodiscovery imports <app>.tasks only; this registers training.embed_items too.
from training import embedding_tasks  # noqa: E402, F401


@shared_task(name="training.group_matrix", acks_late=True, soft_time_limit=1800, time_limit=1900)
def group_matrix_task(scenario_id: int) -> int:
    """Fill in the missing cells of a scenario group's scenario × model matrix (idempotent)."""
    from scenarios.models import Scenario
    from training.matrix import group_matrix_compute

    group = Scenario.objects.filter(pk=scenario_id).first()
    return group_matrix_compute(group=group) if group is not None else 0
