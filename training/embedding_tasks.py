"""Celery task that refreshes the item text embeddings: a thin wrapper around ``training.embeddings_service``.

Imported from the end of ``training.tasks`` so that Celery's autodiscovery (which imports
``<app>.tasks`` only) registers it. The job row is the source of truth: the task claims it with a
conditional update, so a redelivered message finds it claimed and does nothing.
"""

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError

from training.embeddings_service import embedding_job_execute, embedding_job_finish
from training.models import RunStatus

logger = logging.getLogger(__name__)

EMBED_SOFT_TIME_LIMIT = 2 * 3600  # about three million items at the measured CPU rate


@shared_task(
    name="training.embed_items",
    bind=True,
    acks_late=True,  # safe: a second delivery finds the job claimed and returns
    reject_on_worker_lost=False,
    soft_time_limit=EMBED_SOFT_TIME_LIMIT,
    time_limit=EMBED_SOFT_TIME_LIMIT + 120,
    autoretry_for=(OperationalError, InterfaceError),  # the database blinked before the job was claimed
    retry_backoff=5,
    retry_backoff_max=60,
    max_retries=3,
)
def embed_items_task(self, job_id: int) -> str:
    queue = (self.request.delivery_info or {}).get("routing_key") or "cpu"
    try:
        return embedding_job_execute(job_id=job_id, device=_device_for(queue))
    except SoftTimeLimitExceeded:
        return embedding_job_finish(
            job_id=job_id, status=RunStatus.FAILED, error=f"time limit of {EMBED_SOFT_TIME_LIMIT} s exceeded"
        )


def _device_for(queue: str) -> str:
    """CUDA on the gpu queue when this pool process sees a device (checked here, never in the parent)."""
    if queue != "gpu":
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
