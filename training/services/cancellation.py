"""Stopping training runs: cancelling one on request, and failing those whose worker went silent."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from recsys_site.errors import Conflict
from training.models import RunStatus, TrainingRun

logger = logging.getLogger(__name__)


def training_run_cancel(*, run: TrainingRun) -> TrainingRun:
    """A queued run is cancelled at once; a running one at its next epoch boundary."""
    now = timezone.now()
    if TrainingRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
        status=RunStatus.CANCELLED, cancel_requested=True, finished_at=now, phase="cancelled"
    ):
        pass
    elif not TrainingRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(cancel_requested=True):
        run.refresh_from_db()
        raise Conflict(f"run {run.pk} is already {run.status}")
    run.refresh_from_db()
    return run


def training_runs_reap(*, stale_after: timedelta | None = None) -> list[int]:
    """Mark failed the running runs whose worker stopped sending heartbeats; return their ids."""
    stale_after = stale_after or timedelta(seconds=settings.RECSYS_RUN_STALE_SECONDS)
    cutoff = timezone.now() - stale_after
    reaped = []
    # An auto run waiting on its study has no worker of its own: its candidates are reaped instead.
    for run_id, worker, heartbeat in TrainingRun.objects.filter(
        status=RunStatus.RUNNING, heartbeat_at__lt=cutoff, auto_study__isnull=True
    ).values_list("id", "worker", "heartbeat_at"):
        message = (
            f"worker lost: {worker or 'unknown worker'} sent no heartbeat since {heartbeat:%Y-%m-%d %H:%M:%S} UTC "
            f"(killed, out of memory, its machine went away, or it could not reach the database since)"
        )
        if TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING, heartbeat_at__lt=cutoff).update(
            status=RunStatus.FAILED, error=message, finished_at=timezone.now(), phase="failed"
        ):
            logger.warning("run %s: %s", run_id, message)
            reaped.append(run_id)
    return reaped
