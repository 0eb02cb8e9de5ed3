"""Training runs: create and dispatch, execute on a worker, cancel, reap, promote and roll back.

Every status change is one conditional UPDATE (``filter(status=…).update(…)``) whose row count
says whether this caller won; nothing reads a status and then acts on it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import statistics
import time
import traceback
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from recsys_site.errors import Conflict, ValidationFailed, without_server_paths
from recsys_site.serving_version import serving_version_bump
from scenarios.models import ComputeQueue, Objective, Scenario
from scenarios.selectors import scenario_protocol, scenario_slice_size
from scenarios.services import scenario_config_clean
from training.algorithms.base import TrainingCancelled
from training.algorithms.registry import get_algorithm
from training.artifact_store import artifact_publish
from training.artifacts import artifact_load, artifact_save
from training.blends import blend_members_attach, blend_members_check
from training.data import NotEnoughData, TrainingData, item_features_attach, needs_item_features
from training.deletion import run_forget_deleted_users
from training.dispatch import training_run_dispatch
from training.evaluation.objectives import objective_k
from training.evaluation.ranking import evaluate, scorer_for_test
from training.evaluation.rating import rating_errors
from training.evaluation.slices import activity_slices
from training.groups import PreparedData, item_map, run_data_load, run_split_plan, scenario_as_queued
from training.lineage import parent_problem
from training.models import Promotion, PromotionAction, RunEvaluation, RunStatus, Study, TrainingRun
from training.progress import EVALUATE_END, FIT_END, Heartbeat, ProgressRecorder
from training.resilience import with_database_retry
from training.selectors import rollback_target
from training.splits import split_for_run, split_record
from training.tuning.pruning import TrialPruned

logger = logging.getLogger(__name__)


# --- creating and dispatching -----------------------------------------------------------------


def training_run_create(  # noqa: PLR0913 - what a run may be asked for, each a field of the run
    *,
    scenario: Scenario,
    algorithm: str | None = None,
    params: Mapping[str, Any] | None = None,
    seed: int | None = None,
    queue: str | None = None,
    parent: TrainingRun | None = None,
    created_by: Any = None,
    trial: tuple[Study, int] | None = None,
    members: Sequence[TrainingRun] = (),
) -> TrainingRun:
    """Queue a run of ``scenario`` and dispatch it once the transaction commits.

    ``params`` override the scenario's stored hyperparameters key by key (when the algorithm is the
    scenario's; another algorithm starts from its defaults); the run records the merged set. Whatever can be
    known before training is checked here (parent, slice size, K list), so a refused run is never queued.
    ``trial`` makes the run a study's trial: the study and the trial's number there; ``members`` are the runs a
    ``blend`` mixes.
    """
    algorithm = algorithm or scenario.algorithm
    stored = scenario.hyperparameters if algorithm == scenario.algorithm else {}
    merged = {**(stored or {}), **(params or {})}
    cleaned = scenario_config_clean(data={"algorithm": algorithm, "hyperparameters": merged}, instance=scenario)
    _check_parent(scenario, algorithm, cleaned["hyperparameters"], parent)
    _check_slice(scenario)
    _check_choice(scenario, algorithm, parent)
    blend_members_check(
        scenario=scenario, algorithm=algorithm, members=members, seed=scenario.seed if seed is None else seed
    )
    plan = split_for_run(scenario=scenario, seed=seed, parent=parent)
    run = TrainingRun.objects.create(
        scenario=scenario,
        algorithm=algorithm,
        params=cleaned["hyperparameters"],
        protocol=scenario_protocol(scenario=scenario),
        split=plan,
        seed=scenario.seed if seed is None else seed,
        queue=_queue_for(queue or scenario.compute_queue),
        parent=parent,
        created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
        study=trial[0] if trial else None,
        trial_number=trial[1] if trial else None,
    )
    run.members.set(members)
    training_run_dispatch(run=run)
    return run


def _check_parent(scenario: Scenario, algorithm: str, params: Mapping[str, Any], parent: TrainingRun | None) -> None:
    """A parent run must be a succeeded run of this scenario or its group, of an algorithm this one can learn from."""
    needs_teacher = get_algorithm(algorithm).needs_teacher
    if parent is None:
        if needs_teacher:
            raise ValidationFailed(
                "no teacher", detail={"parent": [f"{algorithm} learns from a teacher: name a parent run"]}
            )
        return
    problems = []
    if parent.scenario_id not in (scenario.pk, scenario.parent_id):
        problems.append("must be a run of this scenario or of its group")
    if parent.status != RunStatus.SUCCEEDED:
        problems.append(f"run {parent.pk} is {parent.status}; only a succeeded run can be a parent")
    incompatible = parent_problem(algorithm=algorithm, parent_algorithm=parent.algorithm)
    if incompatible:
        problems.append(f"run {parent.pk}: {incompatible}")
    elif needs_teacher and parent.params.get("max_length", 0) < params.get("max_length", 0):
        problems.append(
            f"run {parent.pk}'s max_length {parent.params['max_length']} is below the student's "
            f"{params['max_length']}: a teacher must see at least as much history"
        )
    if problems:
        raise ValidationFailed("bad parent", detail={"parent": problems})


def _check_choice(scenario: Scenario, algorithm: str, parent: TrainingRun | None) -> None:
    """An ``auto`` run judges its candidates on the validation part, and starts from nothing."""
    if not get_algorithm(algorithm).chooses_model:
        return
    if scenario.validation_share <= 0:
        raise ValidationFailed(
            "no validation part",
            detail={"algorithm": [f"auto judges candidates on validation, and {scenario.slug} holds none out"]},
        )
    if parent is not None:
        raise ValidationFailed("no parent", detail={"parent": ["an auto run trains its candidates from scratch"]})


def _check_slice(scenario: Scenario) -> None:
    """Refuse a slice too small for its metrics to mean anything, and K beyond its catalogue."""
    size = scenario_slice_size(scenario=scenario)
    minimums = (
        ("events", size["events"], settings.RECSYS_MIN_SLICE_EVENTS),
        ("users with 2 or more events", size["repeat_users"], settings.RECSYS_MIN_SLICE_USERS),
        ("items", size["items"], settings.RECSYS_MIN_SLICE_ITEMS),
    )
    short = [f"{have} {what} (at least {need} needed)" for what, have, need in minimums if have < need]
    if short:
        raise ValidationFailed("slice too small", detail={"slice": [f"{scenario.slug}'s slice has {'; '.join(short)}"]})
    too_large = [k for k in scenario.k_list if k > size["items"]]
    if too_large:
        raise ValidationFailed(
            "k beyond the catalogue",
            detail={
                "k_list": [
                    f"K {', '.join(map(str, too_large))} exceeds the {size['items']} items in the slice: "
                    "a list cannot be longer than the catalogue"
                ]
            },
        )


def _queue_for(choice: str) -> str:
    if choice == ComputeQueue.AUTO:
        return "gpu" if settings.RECSYS_GPU_WORKERS else "cpu"
    if choice not in ("cpu", "gpu"):
        raise ValidationFailed("bad queue", detail={"queue": ["must be auto, cpu or gpu"]})
    return choice


# --- cancelling and reaping -------------------------------------------------------------------


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


# --- executing (on a worker) ------------------------------------------------------------------


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
        model = get_algorithm(run.algorithm)(run.params, device=device, seed=run.seed)
        train = _with_domains(model, prepared)
        if run.parent is not None:
            _start_from_parent(model, run.parent, training)
        if getattr(model, "needs_members", False):
            blend_members_attach(model=model, run=run, training=training)
        recorder = ProgressRecorder(run.pk, trial=run.study_id is not None)
        model.fit(train, recorder, validation=split.validation)
        timings["fit"] = time.perf_counter() - started
        validation_metrics = _validation_metrics(run, model, split)

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
    except Exception as error:  # any failure of the job is recorded on the run, never lost
        logger.exception("run %s failed", run.pk)
        detail = without_server_paths("".join(traceback.format_exception_only(error)).strip())
        return _finish(run.pk, RunStatus.FAILED, timings=timings, error=detail)
    per_user = result["per_user"]
    user_ids = [int(training.user_ids[u]) for u in per_user.pop("users")]
    with_database_retry(
        lambda: RunEvaluation.objects.update_or_create(
            run_id=run.pk, defaults={"user_ids": user_ids, "vectors": per_user}
        ),
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


def _validation_metrics(run: TrainingRun, model: Any, split: Any) -> dict[str, float]:
    """A study's trial is judged on validation (every ranking metric at the study's K and 10, and the rating
    errors of a model that predicts ratings under the rating objective); other runs skip this."""
    if run.study_id is None or split.validation.n_pairs == 0:
        return {}
    objective = Study.objects.values_list("objective", flat=True).get(pk=run.study_id)
    ks = sorted({k for k in (objective_k(objective) or 10, 10) if k <= split.train.n_items})
    measured = evaluate(model, split.train, split.validation, ks=ks)["metrics"] if ks else {}
    if model.predicts_ratings and run.protocol.get("objective") == Objective.RATING:
        measured |= rating_errors(model, split.validation)
    return measured


SERVING_BATCH = 256


def serving_profile(model: Any, *, repeats: int = 5) -> dict[str, Any]:
    """What serving the model costs: its parameter count and the median time to rank every item for a batch
    of users (scores plus top 10), as the recommendation endpoint does."""
    users = np.arange(min(SERVING_BATCH, model.n_users))
    cuda = str(model.device).startswith("cuda")
    samples = []
    for _ in range(repeats + 1):  # the first call warms caches up and is not counted
        started = time.perf_counter()
        model.score(users).topk(min(10, model.n_items), dim=1)
        if cuda:
            torch.cuda.synchronize()
        samples.append((time.perf_counter() - started) * 1000)
    return {
        "parameters": int(model.parameter_count()),
        "latency_ms": round(statistics.median(samples[1:]), 3),
        "batch_users": len(users),
        "device": str(model.device),
    }


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


# --- promotion ---------------------------------------------------------------------------------


@transaction.atomic
def training_run_promote(
    *, run: TrainingRun, actor: Any = None, scenario: Scenario | None = None, force: bool = False, reason: str = ""
) -> Promotion:
    """Make a succeeded run the live model of its scenario (or of a member of it), recording who replaced what
    and why.

    A run of a group scenario may serve a member (a STAR model serves each member with its own domain). A run
    tested on few users (``low_evidence``) is promoted only with ``force``: its metrics cannot support the choice.
    Promoting a succeeded ``auto`` run puts the run it chose live, with its reason unless one is given.
    """
    if run.status == RunStatus.SUCCEEDED and run.chosen_run is not None:
        reason = reason.strip() or f"chosen by auto run {run.pk}: {run.selection.get('reason', '')}"
        run = run.chosen_run
    if run.status != RunStatus.SUCCEEDED:
        raise Conflict(f"only a succeeded run can be promoted; run {run.pk} is {run.status}")
    if not run.artifact_path:
        raise Conflict(f"run {run.pk} has no artifact any more (deleted by the retention policy): retrain to serve it")
    if run.low_evidence and not force:
        raise Conflict(
            f"run {run.pk} was tested on {run.evaluated_users} users (fewer than "
            f"{settings.RECSYS_LOW_EVIDENCE_USERS}): its metrics are low evidence; promote with force to confirm"
        )
    target = Scenario.objects.select_for_update().get(pk=(scenario or run.scenario).pk)
    if target.pk != run.scenario_id and target.parent_id != run.scenario_id:
        raise ValidationFailed(
            "bad target", detail={"scenario": [f"run {run.pk} belongs to neither {target.slug} nor its group"]}
        )
    if target.live_run_id == run.pk:
        raise Conflict(f"run {run.pk} is already live for {target.slug}")
    return _switch_live(target, run, PromotionAction.PROMOTE, actor=actor, reason=reason)


@transaction.atomic
def scenario_rollback(*, scenario: Scenario, actor: Any = None, reason: str = "") -> Promotion:
    """Put back the run that was live before the current one. Each rollback goes one step further back in the
    history (a promotion pushes a run, a rollback pops one), never forward to the run it just replaced."""
    scenario = Scenario.objects.select_for_update().get(pk=scenario.pk)
    previous = rollback_target(scenario=scenario)
    if previous is None:
        raise Conflict(f"{scenario.slug} has no earlier live model to roll back to")
    if previous.status != RunStatus.SUCCEEDED:
        raise Conflict(f"the earlier live run {previous.pk} is {previous.status}")
    return _switch_live(scenario, previous, PromotionAction.ROLLBACK, actor=actor, reason=reason)


def _switch_live(scenario: Scenario, run: TrainingRun, action: str, *, actor: Any, reason: str) -> Promotion:
    promotion = Promotion.objects.create(
        scenario=scenario,
        run=run,
        previous_run_id=scenario.live_run_id,
        action=action,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        reason=reason.strip(),
    )
    Scenario.objects.filter(pk=scenario.pk).update(live_run=run)
    serving_version_bump()
    return promotion
