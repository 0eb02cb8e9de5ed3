"""``auto`` runs: choose the scenario's model within a budget.

A worker claims the auto run like any run, loads its split, tests whether the training events have order
(``training.algorithms.auto``) and starts a study the run owns over the applicable algorithms: each one's defaults
first, as child runs on the queues, then the best ``tune_top`` of them tuned by TPE until the wall-time or trial
budget is spent. The run then stays *running* without a worker of its own; when its study ends, so does the run
(``training.tuning.choice``): succeeded pointing at the best candidate on the validation objective, with every
candidate and the reason recorded. Cancelling the run cancels its study.
"""

from __future__ import annotations

import contextlib
import logging

from django.utils import timezone

from recsys_site.errors import Conflict, DomainError, error_text, without_server_paths
from scenarios.models import Objective
from training.algorithms.auto import candidates_for, event_order
from training.evaluation.objectives import objective_default
from training.groups import run_data_load
from training.models import RunStatus, Study, StudyStatus, TrainingRun
from training.progress import Heartbeat
from training.services import training_run_cancel, training_run_claim
from training.tuning.studies import study_cancel, study_create

logger = logging.getLogger(__name__)


def auto_run_execute(*, run_id: int, device: str) -> str:
    """Claim a queued auto run and start its search; return its status (``running`` once the study started)."""
    kept = training_run_claim(run_id=run_id, device=device)
    if kept is not None:
        return kept
    with Heartbeat(TrainingRun, run_id):
        run = TrainingRun.objects.select_related("scenario", "created_by").get(pk=run_id)
        try:
            study = _search_start(run)
        except DomainError as error:
            return _fail(run_id, error_text(error))
        except Exception as error:  # recorded on the run, never lost
            logger.exception("auto run %s could not start", run_id)
            return _fail(run_id, without_server_paths(f"{type(error).__name__}: {error}"))
    if TrainingRun.objects.filter(pk=run_id, cancel_requested=True).exists():
        study_cancel(study=study)  # cancelled while the search was starting
    return TrainingRun.objects.values_list("status", flat=True).get(pk=run_id)


def _search_start(run: TrainingRun) -> Study:
    prepared = run_data_load(run=run)
    order = event_order(prepared.split.train)
    ratings = run.protocol.get("objective") == Objective.RATING
    algorithms, skipped = candidates_for(order, ratings=ratings)
    TrainingRun.objects.filter(pk=run.pk).update(
        selection={"order": order.as_dict(), "considered": algorithms, "skipped": skipped},
        data_snapshot=prepared.training.snapshot(),
        phase="choosing",
    )
    params = run.params
    return study_create(
        scenario=run.scenario,
        algorithms=algorithms,
        objective=params["objective"] or objective_default(ratings=ratings),
        max_trials=params["max_trials"] or None,
        max_seconds=params["max_seconds"] or None,
        created_by=run.created_by,
        tune_top=params["tune_top"],
        auto_run=run,
    )


def _fail(run_id: int, error: str) -> str:
    TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
        status=RunStatus.FAILED, error=error, phase=RunStatus.FAILED, finished_at=timezone.now()
    )
    return RunStatus.FAILED


def any_run_cancel(*, run: TrainingRun) -> TrainingRun:
    """Cancel any run: an auto run's search stops with it (queued candidates at once, running ones at their next
    epoch), other runs as :func:`training.services.training_run_cancel` says."""
    study = Study.objects.filter(auto_run=run).first()
    if study is None:
        return training_run_cancel(run=run)  # not an auto run, or one whose search has not started
    if not TrainingRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(cancel_requested=True):
        run.refresh_from_db()
        raise Conflict(f"run {run.pk} is already {run.status}")
    if study.status == StudyStatus.RUNNING:
        with contextlib.suppress(Conflict):  # the study ended meanwhile: the run ended with it
            study_cancel(study=study)
    run.refresh_from_db()
    return run
