"""The artifact retention policy: keep what may serve or be built on, delete the rest's files, keep every record.

Kept: every run that is or was live for a scenario (a rollback needs it), the parent of every run not yet
finished (a fine-tuned or distilled child loads it), and the last ``keep_last`` succeeded runs of each
scenario, with the run each kept ``auto`` run chose. A run whose artifact goes keeps its metrics, evaluation and
checksum; its ``artifact_path`` and ``artifact_size`` are emptied, so it can no longer be promoted or served.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.db.models import Q

from scenarios.models import Scenario
from training.artifact_store import artifact_unpublish
from training.models import Promotion, RunStatus, TrainingRun

logger = logging.getLogger(__name__)
UNFINISHED = (RunStatus.QUEUED, RunStatus.RUNNING)


@dataclass
class RetentionReport:
    kept: list[int] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    freed_bytes: int = 0


def artifacts_retain(*, keep_last: int, dry_run: bool = False) -> RetentionReport:
    """Apply the policy to every run holding an artifact; with ``dry_run`` only report what would go."""
    kept = _kept_run_ids(keep_last)
    holding = TrainingRun.objects.filter(status=RunStatus.SUCCEEDED).exclude(artifact_path="")
    report = RetentionReport(kept=sorted(set(holding.filter(pk__in=kept).values_list("pk", flat=True))))
    for run in holding.exclude(pk__in=kept).order_by("pk"):
        report.deleted.append(run.pk)
        report.freed_bytes += run.artifact_size or 0
        if not dry_run:
            _artifact_delete(run)
    return report


def _kept_run_ids(keep_last: int) -> set[int]:
    kept: set[int] = set(Scenario.objects.exclude(live_run=None).values_list("live_run_id", flat=True))
    for run_id, previous_id in Promotion.objects.values_list("run_id", "previous_run_id"):
        kept.update(i for i in (run_id, previous_id) if i is not None)
    kept.update(
        TrainingRun.objects.filter(status__in=UNFINISHED, parent__isnull=False).values_list("parent_id", flat=True)
    )
    for scenario_id in TrainingRun.objects.values_list("scenario_id", flat=True).distinct():
        latest = TrainingRun.objects.filter(scenario_id=scenario_id, status=RunStatus.SUCCEEDED).order_by(
            "-finished_at", "-pk"
        )[:keep_last]
        kept.update(latest.values_list("pk", flat=True))
    # A kept auto run serves (once promoted) the run it chose.
    kept.update(
        TrainingRun.objects.filter(pk__in=kept, chosen_run__isnull=False).values_list("chosen_run_id", flat=True)
    )
    return kept


def _artifact_delete(run: TrainingRun) -> None:
    """Empty the run's artifact fields (only if they are still the ones read), then remove the folder."""
    directory = Path(run.artifact_path)
    with transaction.atomic():
        cleared = (
            TrainingRun.objects.filter(pk=run.pk, artifact_path=run.artifact_path)
            .filter(~Q(pk__in=Scenario.objects.exclude(live_run=None).values("live_run_id")))
            .update(artifact_path="", artifact_size=None)
        )
    if cleared:
        shutil.rmtree(directory, ignore_errors=True)
        artifact_unpublish(directory=directory)
        logger.info("run %s: artifact %s deleted by the retention policy", run.pk, directory)
