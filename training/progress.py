"""What a worker writes while it works: per-epoch progress of a run, and heartbeats of runs and embedding jobs.

Every write survives a database blip (``training.resilience``): a run fails only when its work fails, never
because one progress write met a dropped connection.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from training.algorithms.base import BudgetSpent, EpochReport, TrainingCancelled
from training.models import EmbeddingJob, MatrixJob, RunStatus, TrainingRun
from training.resilience import with_database_retry
from training.tuning.pruning import trial_check

logger = logging.getLogger(__name__)

# Share of the progress bar each phase takes.
FIT_START, FIT_END, EVALUATE_END = 0.05, 0.85, 0.95


class ProgressRecorder:
    """The progress callback: records each epoch on the run and raises TrainingCancelled when asked to stop."""

    def __init__(self, run_id: int, *, trial: bool = False) -> None:
        self.run_id, self.trial = run_id, trial
        self.history: list[dict[str, Any]] = []
        # Why the study's budget stopped the trial, when it did: it then ends with its best epoch so far.
        self.budget_stop = ""

    def __call__(self, report: EpochReport) -> None:
        entry: dict[str, Any] = {"phase": report.phase, "epoch": report.step}
        if report.loss is not None:
            entry["loss"] = round(float(report.loss), 6)
        entry.update({name: round(float(value), 6) for name, value in report.validation.items()})
        self.history.append(entry)
        fraction = FIT_START + (FIT_END - FIT_START) * min(report.step / max(report.total, 1), 1.0)
        fields = {
            "phase": report.phase,
            "epoch": report.step,
            "total_epochs": report.total,
            "progress": round(fraction, 4),
            "history": self.history,
            "heartbeat_at": timezone.now(),
        }
        cancelled = with_database_retry(lambda: self._record(fields), what=f"progress of run {self.run_id}")
        if cancelled:
            raise TrainingCancelled
        if self.trial:  # a study's trial: stopped with its study or its budget, or pruned when it falls behind
            try:
                trial_check(run_id=self.run_id, history=self.history, last=report.step >= report.total)
            except BudgetSpent as spent:
                self.budget_stop = str(spent)
                raise

    def _record(self, fields: dict[str, Any]) -> bool:
        TrainingRun.objects.filter(pk=self.run_id, status=RunStatus.RUNNING).update(**fields)
        return TrainingRun.objects.filter(pk=self.run_id, cancel_requested=True).exists()


class Heartbeat:
    """Marks a running row alive every few seconds from a background thread, even inside one long epoch.

    A failed beat (the database is away) is logged and the thread goes on beating: the row is reaped only
    when the worker itself is gone for ``RECSYS_RUN_STALE_SECONDS``.
    """

    def __init__(self, model: type[TrainingRun] | type[EmbeddingJob] | type[MatrixJob], row_id: int) -> None:
        self.model = model
        self.row_id = row_id
        self.stopped = threading.Event()
        name = f"heartbeat-{model._meta.model_name}-{row_id}"
        self.thread = threading.Thread(target=self._beat, name=name, daemon=True)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)

    def _beat(self) -> None:
        try:
            while not self.stopped.wait(settings.RECSYS_HEARTBEAT_SECONDS):
                self._beat_once()
        finally:
            connection.close()

    def _beat_once(self) -> None:
        try:
            self.model.objects.filter(pk=self.row_id, status=RunStatus.RUNNING).update(heartbeat_at=timezone.now())
        except DatabaseError as error:
            logger.warning("heartbeat of %s %s missed: %s", self.model._meta.model_name, self.row_id, error)
            connection.close()  # the next beat opens a new connection
