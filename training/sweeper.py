"""The sweeper: makes every queued or running run, embedding job and matrix job end, and every asked slice refresh
happen.

It runs inside celery beat (``training.beat``), not as a task, so it sweeps when every worker is down. Each
sweep:

- sends again a queued row whose send failed (the broker was down when it was created), or whose message
  the broker no longer holds (lost in a Redis restart), at most ``RECSYS_DISPATCH_MAX_ATTEMPTS`` messages;
  past that the row fails with the reason;
- fails a row queued for a queue no worker has consumed for ``RECSYS_QUEUE_NO_CONSUMER_SECONDS``;
- fails a running row whose heartbeat stopped for ``RECSYS_RUN_STALE_SECONDS`` (its worker died);
- sends again a slice refresh that was asked for and never sent (the broker was down).

Every change is a conditional update on ``status='queued'`` or ``'running'``: a worker that claims or finishes
the row meanwhile wins, and a duplicate message finds the row claimed and does nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from scenarios.dispatch import scenario_slice_refresh_send
from scenarios.models import Scenario
from training.broker import broker_task_ids, consumed_queues
from training.dispatch import EMBED_QUEUE, Outbox, embedding_job_send, matrix_job_send, training_run_send
from training.models import EmbeddingJob, MatrixJob, RunStatus, TrainingRun
from training.services import training_runs_reap
from training.tuning.studies import study_trial_finished

logger = logging.getLogger(__name__)

QUEUES = ("cpu", "gpu")
JOBS: tuple[type[EmbeddingJob] | type[MatrixJob], ...] = (EmbeddingJob, MatrixJob)  # queued on the cpu queue


@dataclass
class SweepReport:
    """Ids of what one sweep did, by what it did."""

    redispatched: list[int] = field(default_factory=list)
    failed_lost: list[int] = field(default_factory=list)
    failed_unconsumed: list[int] = field(default_factory=list)
    reaped_runs: list[int] = field(default_factory=list)
    reaped_jobs: list[int] = field(default_factory=list)
    slices_sent: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(vars(self).values())


@dataclass
class QueueWatch:
    """Since when each queue has had no consumer (kept by the long-lived beat process between sweeps)."""

    unconsumed_since: dict[str, datetime] = field(default_factory=dict)

    def update(self, consumed: set[str] | None, now: datetime) -> None:
        """Record what the workers answered; ``None`` (the broker cannot say, or is down) changes nothing, so
        runs created while Redis is away are sent when it returns rather than failed."""
        if consumed is None:
            return
        for queue in QUEUES:
            if queue in consumed:
                self.unconsumed_since.pop(queue, None)
            else:
                self.unconsumed_since.setdefault(queue, now)

    def abandoned(self, now: datetime) -> list[str]:
        """Queues without a consumer for at least ``RECSYS_QUEUE_NO_CONSUMER_SECONDS``."""
        cutoff = now - timedelta(seconds=settings.RECSYS_QUEUE_NO_CONSUMER_SECONDS)
        return [queue for queue, since in self.unconsumed_since.items() if since <= cutoff]


def sweep(*, watch: QueueWatch) -> SweepReport:
    """One pass over everything that could be stuck; see the module's docstring."""
    close_old_connections()
    now = timezone.now()
    report = SweepReport()
    consumed = consumed_queues()
    watch.update(consumed, now)
    pending = broker_task_ids(QUEUES)
    for model in (TrainingRun, *JOBS):
        _redispatch(model, pending=pending, now=now, report=report)
        report.failed_unconsumed += _fail_unconsumed(model, watch.abandoned(now), now=now)
    report.reaped_runs = training_runs_reap()
    for run_id in report.reaped_runs:  # a reaped trial makes room for its study's next one
        study_trial_finished(run_id=run_id)
    report.reaped_jobs = [job_id for model in JOBS for job_id in jobs_reap(model)]
    report.slices_sent = _slices_resend(now=now)
    if report:
        logger.warning("sweep: %s", report)
    return report


def _redispatch(model: Outbox, *, pending: set[str] | None, now: datetime, report: SweepReport) -> None:
    """Send again what was never sent, or whose message the broker lost; fail what was lost too often."""
    lost_before = now - timedelta(seconds=settings.RECSYS_DISPATCH_LOST_SECONDS)
    for row in (
        _queued(model).filter(created_at__lt=lost_before).values("id", "task_id", "dispatched_at", "dispatch_attempts")
    ):
        never_sent = row["dispatched_at"] is None
        lost = not never_sent and pending is not None and row["task_id"] not in pending
        lost = lost and row["dispatched_at"] < lost_before
        if not (never_sent or lost):
            continue
        if lost and row["dispatch_attempts"] >= settings.RECSYS_DISPATCH_MAX_ATTEMPTS:
            reason = (
                f"its task message was lost {row['dispatch_attempts']} times (the broker restarted or dropped "
                "it); queue it again"
            )
            if _fail(model, row["id"], reason):
                report.failed_lost.append(row["id"])
        elif _send(model, row["id"]):
            report.redispatched.append(row["id"])


def _fail_unconsumed(model: Outbox, queues: list[str], *, now: datetime) -> list[int]:
    """Fail rows queued for a queue that no worker has consumed for the configured time."""
    seconds = settings.RECSYS_QUEUE_NO_CONSUMER_SECONDS
    cutoff = now - timedelta(seconds=seconds)
    failed = []
    for queue in queues:
        rows = _queued(model).filter(created_at__lte=cutoff)
        if model is TrainingRun:
            rows = rows.filter(queue=queue)
        elif queue != EMBED_QUEUE:
            continue
        reason = f"no worker consumed the {queue} queue for {seconds} s: start one with -Q {queue}"
        failed += [row_id for row_id in rows.values_list("id", flat=True) if _fail(model, row_id, reason)]
    return failed


def embedding_jobs_reap(*, stale_after: timedelta | None = None) -> list[int]:
    """Mark failed the running embedding jobs whose worker stopped sending heartbeats; return their ids."""
    return jobs_reap(EmbeddingJob, stale_after=stale_after)


def jobs_reap(model: type[EmbeddingJob] | type[MatrixJob], *, stale_after: timedelta | None = None) -> list[int]:
    """Mark failed the running jobs of ``model`` whose worker stopped sending heartbeats; return their ids."""
    cutoff = timezone.now() - (stale_after or timedelta(seconds=settings.RECSYS_RUN_STALE_SECONDS))
    silent = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    reaped = []
    for job_id in model.objects.filter(silent, status=RunStatus.RUNNING).values_list("id", flat=True):
        reason = f"worker lost: no heartbeat for {int((timezone.now() - cutoff).total_seconds())} s"
        if model.objects.filter(silent, pk=job_id, status=RunStatus.RUNNING).update(
            status=RunStatus.FAILED, error=reason, finished_at=timezone.now()
        ):
            reaped.append(job_id)
    return reaped


def _slices_resend(*, now: datetime) -> list[int]:
    """Send again slice refreshes asked for and never sent (the broker was down).

    One that was sent is not sent again: it may wait behind long runs, and the stored size is only a summary
    (runs and pages compute the slice afresh), so the next edit or refresh recomputes one lost in a restart.
    """
    lost_before = now - timedelta(seconds=settings.RECSYS_DISPATCH_LOST_SECONDS)
    unsent = Scenario.objects.filter(slice_requested_at__lt=lost_before, slice_dispatched_at__isnull=True).filter(
        Q(slice_computed_at__isnull=True) | Q(slice_computed_at__lt=F("slice_requested_at"))
    )
    ids = list(unsent.values_list("id", flat=True))
    return [scenario_id for scenario_id in ids if scenario_slice_refresh_send(scenario_id=scenario_id)]


def _queued(model: Outbox) -> QuerySet:
    return model.objects.filter(status=RunStatus.QUEUED)


def _send(model: Outbox, row_id: int) -> bool:
    if model is EmbeddingJob:
        return embedding_job_send(job_id=row_id)
    if model is MatrixJob:
        return matrix_job_send(job_id=row_id)
    queue = TrainingRun.objects.filter(pk=row_id).values_list("queue", flat=True).first()
    return queue is not None and training_run_send(run_id=row_id, queue=queue)


def _fail(model: Outbox, row_id: int, reason: str) -> bool:
    """Fail a row that is still queued (a worker that claimed it meanwhile wins)."""
    fields = {"status": RunStatus.FAILED, "error": reason, "finished_at": timezone.now()}
    if model is TrainingRun:
        fields["phase"] = RunStatus.FAILED
    done = bool(_queued(model).filter(pk=row_id).update(**fields))
    if done:
        logger.warning("%s %s failed: %s", model._meta.model_name, row_id, reason)
    return done
