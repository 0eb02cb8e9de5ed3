"""Celery tasks of training: thin wrappers around ``training.services``.

The run row is the source of truth: the task claims it with a conditional update, so a
redelivered or duplicated message finds the run already claimed and does nothing.
CUDA is only touched here, inside the pool process that executes the task, never in the
worker's parent process (CUDA does not survive a fork).
"""

import logging
from typing import Any

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError

from scenarios.models import Scenario
from training.algorithms.auto import Auto
from training.dispatch import EMBED_ITEMS, GROUP_MATRIX, TRAINING_RUN
from training.embeddings_service import embedding_job_execute, embedding_job_finish
from training.matrix import matrix_job_execute, matrix_job_finish
from training.models import RunStatus, TrainingRun
from training.retention import artifacts_retain
from training.services import training_run_create, training_run_execute
from training.tuning.auto import auto_run_execute
from training.tuning.studies import study_trial_finished

logger = logging.getLogger(__name__)
AUTO = Auto.name


def claiming_task_options(*, soft_time_limit: int, grace: int) -> dict[str, Any]:
    """Celery options of a task that claims its job row: acknowledged late, since a second delivery finds the row
    claimed and returns; retried on the named transient errors alone (the database blinked), bounded, with backoff;
    killed ``grace`` seconds after its soft time limit."""
    return {
        "bind": True,
        "acks_late": True,
        "reject_on_worker_lost": False,
        "soft_time_limit": soft_time_limit,
        "time_limit": soft_time_limit + grace,
        "autoretry_for": (OperationalError, InterfaceError),
        "retry_backoff": 5,
        "retry_backoff_max": 60,
        "max_retries": 3,
    }


def delivered_queue(task: Task) -> str:
    """The queue the bound ``task``'s message came from (``cpu`` where the broker does not say)."""
    return (task.request.delivery_info or {}).get("routing_key") or "cpu"


@shared_task(
    name=TRAINING_RUN, **claiming_task_options(soft_time_limit=settings.RECSYS_TRAINING_SOFT_TIME_LIMIT, grace=300)
)
def training_run_task(self, run_id: int) -> str:
    try:
        device = worker_device(delivered_queue(self), cuda_required=True)
    except RuntimeError as error:
        TrainingRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(status=RunStatus.FAILED, error=str(error))
        return RunStatus.FAILED
    try:
        if TrainingRun.objects.filter(pk=run_id, algorithm=AUTO).exists():
            return auto_run_execute(run_id=run_id, device=device)
        return training_run_execute(run_id=run_id, device=device)
    except SoftTimeLimitExceeded:
        TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
            status=RunStatus.FAILED, error=f"time limit of {settings.RECSYS_TRAINING_SOFT_TIME_LIMIT} s exceeded"
        )
        return RunStatus.FAILED
    finally:
        study_trial_finished(run_id=run_id)  # a study's trial makes room for the next one


def worker_device(queue: str, *, cuda_required: bool) -> str:
    """The device for a task taken from ``queue``: CUDA on the gpu queue when this pool process sees one.

    Without a device there, a task that needs one (training) raises ``RuntimeError``; one that can do
    without (the embedding refresh) runs on the CPU.
    """
    import torch  # here, in the pool process, never in the worker's parent (CUDA does not survive a fork)

    if queue != "gpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if cuda_required:
        raise RuntimeError("this worker serves the gpu queue but sees no CUDA device")
    return "cpu"


@shared_task(name="training.scheduled_retrain", acks_late=False, soft_time_limit=60, time_limit=90)
def scheduled_retrain_task(scenario_id: int) -> int | None:
    """Queue a retrain of a scenario on its schedule (the run itself executes as training.run)."""
    scenario = Scenario.objects.filter(pk=scenario_id).first()
    if scenario is None:
        logger.warning("scheduled retrain of a deleted scenario %s", scenario_id)
        return None
    return training_run_create(scenario=scenario).pk


@shared_task(name=GROUP_MATRIX, acks_late=True, soft_time_limit=1800, time_limit=1900)
def group_matrix_task(job_id: int) -> str:
    """Compute the missing and stale cells of a group's scenario × model matrix (a claimed job is not redone)."""
    try:
        return matrix_job_execute(job_id=job_id)
    except SoftTimeLimitExceeded:
        return matrix_job_finish(job_id=job_id, status=RunStatus.FAILED, error="time limit of 1800 s exceeded")


EMBED_SOFT_TIME_LIMIT = settings.RECSYS_EMBED_SOFT_TIME_LIMIT  # 2 h by default: about three million items on a CPU


@shared_task(name=EMBED_ITEMS, **claiming_task_options(soft_time_limit=EMBED_SOFT_TIME_LIMIT, grace=120))
def embed_items_task(self, job_id: int) -> str:
    try:
        return embedding_job_execute(job_id=job_id, device=worker_device(delivered_queue(self), cuda_required=False))
    except SoftTimeLimitExceeded:
        return embedding_job_finish(
            job_id=job_id, status=RunStatus.FAILED, error=f"time limit of {EMBED_SOFT_TIME_LIMIT} s exceeded"
        )


@shared_task(name="training.artifacts_retain", acks_late=True, soft_time_limit=600, time_limit=660)
def artifacts_retain_task() -> list[int]:
    """Apply the artifact retention policy (idempotent); returns the runs whose artifacts were deleted."""
    return artifacts_retain(keep_last=settings.RECSYS_KEEP_RUNS).deleted
