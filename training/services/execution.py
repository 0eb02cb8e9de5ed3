"""Executing a claimed training run on a worker: load, fit, evaluate, save, and record how it ended.

Every status change is one conditional UPDATE whose row count says whether this worker won."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from recsys_site.errors import without_server_paths
from scenarios.models import Objective
from training.algorithms.base import TrainingCancelled
from training.algorithms.registry import get_algorithm
from training.artifact_store import artifact_publish
from training.artifacts import artifact_load, artifact_save
from training.blends import blend_members_attach
from training.data import NotEnoughData, TrainingData, item_features_attach, needs_item_features
from training.deletion import run_forget_deleted_users
from training.evaluation.objectives import objective_k
from training.evaluation.ranking import evaluate, scorer_for_test
from training.evaluation.rating import errors_of_sums, rating_errors, rating_errors_by_user
from training.evaluation.slices import activity_slices
from training.groups import PreparedData, item_map, run_data_load, run_split_plan, scenario_as_queued
from training.memory import TooLarge, memory_check
from training.models import RunEvaluation, RunStatus, Study, TrainingRun
from training.progress import EVALUATE_END, FIT_END, Heartbeat, ProgressRecorder
from training.resilience import with_database_retry
from training.services.serving_cost import serving_profile
from training.splits import split_record
from training.tuning.pruning import TrialPruned

logger = logging.getLogger(__name__)


def training_run_claim(*, run_id: int, device: str) -> str | None:
    """Move a queued run to running on this worker; None when claimed, else the status that kept it."""
    claimed = TrainingRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
        worker=f"{socket.gethostname()}:{os.getpid()}",
        device=device,
        phase="loading",
        progress=0.0,
    )
    if claimed:
        return None
    status = TrainingRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
    logger.info("run %s not claimed (status %s)", run_id, status)
    return status or "missing"


def training_run_execute(*, run_id: int, device: str) -> str:
    """Claim and execute a queued run; return its final status. A run already claimed is left alone."""
    kept = training_run_claim(run_id=run_id, device=device)
    if kept is not None:
        return kept
    with Heartbeat(TrainingRun, run_id):
        run = with_database_retry(
            lambda: TrainingRun.objects.select_related("scenario").get(pk=run_id), what=f"loading run {run_id}"
        )
        return _execute(run, device)


def _execute(run: TrainingRun, device: str) -> str:
    timings: dict[str, float] = {}
    try:
        started = time.perf_counter()
        prepared = run_data_load(run=run)
        if needs_item_features(run.algorithm, run.params):  # content models also rank items without events
            training, split = item_features_attach(
                training=prepared.training, split=prepared.split, scenario=scenario_as_queued(run=run), device=device
            )
            prepared = dataclasses.replace(prepared, training=training, split=split)
        training, split = prepared.training, prepared.split
        if split.test.n_pairs == 0:
            raise NotEnoughData("the split left no test events: the slice is too small for this protocol")
        snapshot, split_done = training.snapshot(), _split_done(run, prepared)
        with_database_retry(
            lambda: TrainingRun.objects.filter(pk=run.pk).update(data_snapshot=snapshot, split=split_done),
            what=f"run {run.pk}",
        )
        timings["load"] = time.perf_counter() - started

        started = time.perf_counter()
        model, recorder = _fitted(run, prepared, device)
        timings["fit"] = time.perf_counter() - started
        validation_metrics, validation_vectors = _validation_metrics(run, model, split)

        _set_phase(run.pk, "evaluating", FIT_END)
        started = time.perf_counter()
        # A cut-off above the catalogue size means nothing: such K are left out of the metrics.
        ks = [k for k in run.protocol["k_list"] if k <= training.data.n_items] or [training.data.n_items]
        tested = scorer_for_test(model, training.data, split)
        result = evaluate(tested, split.train, split.test, ks=ks, exclude=split.validation)
        result["metrics"].update(activity_slices(tested, split.train, split.test, exclude=split.validation))
        result["metrics"].update(_rating_metrics(run, model, split))
        timings["evaluate"] = time.perf_counter() - started
        serving = serving_profile(model)

        _set_phase(run.pk, "saving", EVALUATE_END)
        started = time.perf_counter()
        directory = Path(settings.ARTIFACT_ROOT) / run.scenario.slug / f"run-{run.pk}"
        saved = artifact_save(
            model=model,
            user_ids=training.user_ids,
            item_ids=training.item_ids,
            item_popularity=split.train.distinct_users_per_item(),
            directory=directory,
        )
        artifact_publish(directory=directory)
        timings["save"] = time.perf_counter() - started
    except TrialPruned as pruned:
        return _finish(run.pk, RunStatus.PRUNED, timings=timings, error=str(pruned))
    except TrainingCancelled as cancelled:
        return _finish(run.pk, RunStatus.CANCELLED, timings=timings, error=str(cancelled) or "cancelled by request")
    except NotEnoughData as error:
        return _finish(run.pk, RunStatus.FAILED, timings=timings, error=f"not enough data: {error}")
    except TooLarge as error:
        return _finish(run.pk, RunStatus.FAILED, timings=timings, error=f"too large for this worker: {error}")
    except Exception as error:  # any failure of the job is recorded on the run, never lost
        logger.exception("run %s failed", run.pk)
        detail = without_server_paths("".join(traceback.format_exception_only(error)).strip())
        return _finish(run.pk, RunStatus.FAILED, timings=timings, error=detail)
    per_user = result["per_user"]
    user_ids = [int(training.user_ids[u]) for u in per_user.pop("users")]
    validation_user_ids = [int(training.user_ids[u]) for u in validation_vectors.pop("users", [])]
    evaluation = {
        "user_ids": user_ids,
        "vectors": per_user,
        "validation_user_ids": validation_user_ids,
        "validation_vectors": validation_vectors,
    }
    with_database_retry(
        lambda: RunEvaluation.objects.update_or_create(run_id=run.pk, defaults=evaluation),
        what=f"evaluation of run {run.pk}",
    )
    status = _finish(
        run.pk,
        RunStatus.SUCCEEDED,
        timings=timings,
        metrics={**result["metrics"], "evaluated_users": result["n_users"]},
        artifact_path=str(saved.path),
        artifact_sha256=saved.sha256,
        artifact_size=saved.size,
        serving=serving,
        kept_epoch=model.kept_epoch,
        budget_stop=recorder.budget_stop,
        validation_metrics=validation_metrics,
    )
    if status == RunStatus.SUCCEEDED and run.started_at is not None:  # users deleted while it trained go now
        run_forget_deleted_users(run_id=run.pk, since=run.started_at)
    return status


def _rating_metrics(run: TrainingRun, model: Any, split: Any) -> dict[str, float]:
    """RMSE and MAE on the test ratings, for a model that predicts ratings trained under the rating objective."""
    if not model.predicts_ratings or run.protocol.get("objective") != Objective.RATING:
        return {}
    return rating_errors(model, split.test)


def _fitted(run: TrainingRun, prepared: PreparedData, device: str) -> tuple[Any, ProgressRecorder]:
    """The run's model, started from its parent or given its members where it has them, fitted on the training
    part once its memory is known to fit the worker; and what recorded its progress."""
    model = get_algorithm(run.algorithm)(run.params, device=device, seed=run.seed)
    train = _with_domains(model, prepared)
    if run.parent is not None:
        _start_from_parent(model, run.parent, prepared.training)
    if getattr(model, "needs_members", False):
        blend_members_attach(model=model, run=run, training=prepared.training)
    what = f"{model.label} on {train.n_items:,} items and {train.n_users:,} users"
    needed = model.memory_needed(train.n_users, train.n_items)
    memory_check(needed=needed, device=model.device, what=what, hint=model.memory_hint)
    recorder = ProgressRecorder(run.pk, trial=run.study_id is not None)
    model.fit(train, recorder, validation=prepared.split.validation)
    return model, recorder


def _validation_metrics(run: TrainingRun, model: Any, split: Any) -> tuple[dict[str, float], dict[str, list]]:
    """A study's trial is judged on validation (every ranking metric at the study's K and 10, and the rating
    errors of a model that predicts ratings under the rating objective); other runs skip this. Also the objective's
    per-user vector (``{"users": [indexes], objective: [values]}``; for a rating error each user's sum of errors,
    with ``ratings``, its count of ratings), which tells the study whether one trial's lead over another is more
    than noise."""
    if run.study_id is None or split.validation.n_pairs == 0:
        return {}, {}
    objective = Study.objects.values_list("objective", flat=True).get(pk=run.study_id)
    ks = sorted({k for k in (objective_k(objective) or 10, 10) if k <= split.train.n_items})
    evaluated = evaluate(model, split.train, split.validation, ks=ks) if ks else {"metrics": {}, "per_user": {}}
    measured, per_user = evaluated["metrics"], evaluated["per_user"]
    by_user: dict[str, list] = {}
    if model.predicts_ratings and run.protocol.get("objective") == Objective.RATING:
        by_user = rating_errors_by_user(model, split.validation)
        measured |= errors_of_sums(by_user)
    if objective in per_user:
        return measured, {"users": per_user["users"], objective: per_user[objective]}
    if objective in by_user:
        return measured, {"users": by_user["users"], objective: by_user[objective], "ratings": by_user["ratings"]}
    return measured, {}


def _split_done(run: TrainingRun, prepared: PreparedData) -> dict[str, Any]:
    return split_record(
        plan=run_split_plan(run=run),
        snapshot=prepared.snapshot,
        validation=prepared.split.validation,
        test=prepared.split.test,
        user_ids=prepared.training.user_ids,
        item_ids=prepared.training.item_ids,
    )


def _with_domains(model: Any, prepared: PreparedData) -> Any:
    """Training events labelled with their member scenario, for models that learn per domain (STAR)."""
    train = prepared.split.train
    if prepared.domains is None or not getattr(model, "uses_domains", False):
        return train
    model.set_domain_names(prepared.domain_names)
    return dataclasses.replace(train, domains=prepared.domains[prepared.split.train_events])


def _start_from_parent(model: Any, parent: TrainingRun, training: TrainingData) -> None:
    """Fine-tune from the parent's weights, or learn from it as a teacher (distillation)."""
    loaded = artifact_load(
        directory=Path(parent.artifact_path),
        sha256=parent.artifact_sha256,
        device=str(model.device),
        name=f"the artifact of parent run {parent.pk}",
    )
    mapping = item_map(child_item_ids=training.item_ids, parent_item_ids=loaded.item_ids)
    if getattr(model, "needs_teacher", False):
        model.attach_teacher(loaded.model, mapping)
    else:
        model.initialize_from(loaded.model, mapping)


def _finish(run_id: int, status: str, *, timings: dict, error: str = "", **fields: Any) -> str:
    if status == RunStatus.SUCCEEDED:
        fields["progress"] = 1.0
    fields.update(
        status=status,
        error=error,
        timings={name: round(value, 4) for name, value in timings.items()},
        finished_at=timezone.now(),
        phase=status,
    )
    done = with_database_retry(
        lambda: TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(**fields),
        what=f"finishing run {run_id}",
    )
    if not done:  # the reaper (or an operator) finished it first; keep their verdict
        return TrainingRun.objects.filter(pk=run_id).values_list("status", flat=True).first() or "missing"
    return status


def _set_phase(run_id: int, phase: str, progress: float) -> None:
    with_database_retry(
        lambda: TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(phase=phase, progress=progress),
        what=f"phase of run {run_id}",
    )
