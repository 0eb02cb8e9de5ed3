"""Deleting end users and scenarios: what goes with them, what is rewritten, and the audit record of each.

Deleting an end user removes their events and clears them from every run that holds data of theirs: their rows
in each artifact (a vector, a history, a row of the training matrix) and their entries in the per-user
evaluation vectors. Those runs are marked (``deleted_users``): their metrics were computed with the user, so the
scenario page offers a retrain. Deleting a scenario removes its runs, promotions and artifact folders and keeps
their history in the audit record.

A run that was training when a user was deleted read their events before the deletion and saves them: once it
succeeds it clears the users deleted since it started (:func:`run_forget_deleted_users`, from the audit records)
the same way.

Artifacts are rewritten to a staging folder beside the old ones and moved in place once the deletion commits, so a
rolled-back deletion (of its own or of an enclosing transaction) leaves the old files as the database knows them.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from accounts.models import AuditAction, AuditRecord
from catalog.models import EndUser
from recsys_site.serving_version import serving_version_bump
from scenarios.models import Scenario
from training.artifact_store import artifact_fetch, artifact_publish, artifact_unpublish
from training.artifacts import ArtifactError, ArtifactRewrite, artifact_forget_users, artifact_user_ids
from training.models import RunEvaluation, RunStatus, TrainingRun


def end_user_delete(*, user: EndUser, actor: Any = None) -> AuditRecord:
    """Delete ``user`` with their events, clear them from every run's stored data, and record who did it."""
    rewrites, broken = _forget_in_artifacts(user.pk)
    try:
        with transaction.atomic():
            record = _end_user_delete_rows(user, actor, rewrites, broken)
            transaction.on_commit(lambda: _after_commit(rewrites, broken))
    except BaseException:
        _abandon(rewrites)
        raise
    return record


def _end_user_delete_rows(
    user: EndUser, actor: Any, rewrites: dict[int, ArtifactRewrite], broken: dict[int, Path]
) -> AuditRecord:
    for run_id, rewrite in rewrites.items():
        TrainingRun.objects.filter(pk=run_id).update(
            artifact_sha256=rewrite.saved.sha256, artifact_size=rewrite.saved.size
        )
    # An artifact that fails verification may hold the user and cannot be rewritten: it goes.
    TrainingRun.objects.filter(pk__in=broken).update(artifact_path="", artifact_sha256="", artifact_size=None)
    serving_version_bump()
    runs = sorted(set(rewrites) | set(broken) | set(_evaluations_forget(user.pk)))
    TrainingRun.objects.filter(pk__in=runs).update(deleted_users=F("deleted_users") + 1)
    events, _ = user.interactions.all().delete()
    user_id, external_id = user.pk, user.external_id
    user.delete()
    details = {
        "end_user_id": user_id,  # names no one once the row is gone; runs still training look it up
        "events": events,
        "runs": runs,
        "artifacts_rewritten": sorted(rewrites),
        "artifacts_removed": sorted(broken),
    }
    return _audit(actor, AuditAction.END_USER_DELETED, external_id, details)


def run_forget_deleted_users(*, run_id: int, since: datetime) -> list[int]:
    """Clear from a succeeded run's artifact and evaluation the end users deleted since ``since`` (its start: it read
    their events before they went) and mark the run; returns their database ids."""
    deleted = _end_users_deleted_since(since)
    run = TrainingRun.objects.filter(pk=run_id, status=RunStatus.SUCCEEDED).exclude(artifact_path="").first()
    if not deleted or run is None:
        return []
    held = artifact_user_ids(directory=Path(run.artifact_path))
    gone = sorted(set(deleted) & {int(uid) for uid in held}) if held is not None else []
    # A deletion that found the run's evaluation already written has counted the user on the run.
    uncounted = [user_id for user_id in gone if run.pk not in deleted[user_id]]
    if not gone:
        return []
    rewrite = artifact_forget_users(
        directory=Path(run.artifact_path), sha256=run.artifact_sha256, user_ids=gone, name=f"run {run.pk}"
    )
    try:
        with transaction.atomic():
            if rewrite is not None:
                TrainingRun.objects.filter(pk=run.pk).update(
                    artifact_sha256=rewrite.saved.sha256, artifact_size=rewrite.saved.size
                )
                transaction.on_commit(lambda: _after_commit({run.pk: rewrite}, {}))
            for user_id in gone:
                _evaluations_forget(user_id)
            TrainingRun.objects.filter(pk=run.pk).update(deleted_users=F("deleted_users") + len(uncounted))
            serving_version_bump()
    except BaseException:
        _abandon({} if rewrite is None else {run.pk: rewrite})
        raise
    return gone


def _end_users_deleted_since(since: datetime) -> dict[int, set[int]]:
    """Database ids of the end users deleted since ``since``, each with the runs its deletion marked."""
    records = AuditRecord.objects.filter(action=AuditAction.END_USER_DELETED, created_at__gte=since)
    return {
        int(details["end_user_id"]): set(details.get("runs", []))
        for details in records.values_list("details", flat=True)
        if details.get("end_user_id") is not None
    }


def _after_commit(rewrites: dict[int, ArtifactRewrite], broken: dict[int, Path]) -> None:
    """The files follow the committed rows (a request between the commit and this finds the old files under the new
    checksum and is refused, 503, rather than served the deleted user's data)."""
    for rewrite in rewrites.values():
        rewrite.replace()
        artifact_publish(directory=rewrite.directory)  # the shared copy must not keep the user either
    _remove_artifact_folders(list(broken.values()))


def _abandon(rewrites: dict[int, ArtifactRewrite]) -> None:
    for rewrite in rewrites.values():
        rewrite.abandon()


def _forget_in_artifacts(user_id: int) -> tuple[dict[int, ArtifactRewrite], dict[int, Path]]:
    """Staged copies of the artifacts that hold the user, without them, by run id; and the artifacts that
    may hold them but fail verification (their folders, by run id)."""
    rewrites: dict[int, ArtifactRewrite] = {}
    broken: dict[int, Path] = {}
    try:
        for run in _runs_maybe_holding(user_id):
            directory = Path(run.artifact_path)
            artifact_fetch(directory=directory)  # a host without the folder rewrites the shared copy
            try:
                rewrite = artifact_forget_users(
                    directory=directory, sha256=run.artifact_sha256, user_ids=[user_id], name=f"run {run.pk}"
                )
            except ArtifactError:
                broken[run.pk] = directory
                continue
            if rewrite is not None:
                rewrites[run.pk] = rewrite
    except BaseException:
        _abandon(rewrites)
        raise
    return rewrites, broken


def _runs_maybe_holding(user_id: int) -> list[TrainingRun]:
    """Succeeded runs whose artifact index lists the user, or whose artifact exists but whose index is unreadable."""
    runs = TrainingRun.objects.filter(status=RunStatus.SUCCEEDED).exclude(artifact_path="")
    holding = []
    for run in runs.only("pk", "artifact_path", "artifact_sha256"):
        directory = Path(run.artifact_path)
        user_ids = artifact_user_ids(directory=directory)
        if (user_ids is None and directory.is_dir()) or (user_ids is not None and user_id in user_ids):
            holding.append(run)
    return holding


def _evaluations_forget(user_id: int) -> list[int]:
    """Drop the user's entries from the per-user evaluation vectors (test, and a trial's validation); returns the
    ids of the runs changed."""
    changed = []
    holding = Q(user_ids__contains=[user_id]) | Q(validation_user_ids__contains=[user_id])
    for evaluation in RunEvaluation.objects.filter(holding).select_for_update():
        evaluation.user_ids, evaluation.vectors = _without(user_id, evaluation.user_ids, evaluation.vectors)
        evaluation.validation_user_ids, evaluation.validation_vectors = _without(
            user_id, evaluation.validation_user_ids, evaluation.validation_vectors
        )
        evaluation.save(update_fields=["user_ids", "vectors", "validation_user_ids", "validation_vectors"])
        changed.append(evaluation.run_id)
    return changed


def _without(user_id: int, user_ids: list[int], vectors: dict[str, list]) -> tuple[list[int], dict[str, list]]:
    keep = [index for index, uid in enumerate(user_ids) if uid != user_id]
    return [user_ids[index] for index in keep], {
        name: [values[index] for index in keep] for name, values in vectors.items()
    }


def scenario_delete(*, scenario: Scenario, actor: Any = None) -> AuditRecord:
    """Delete the scenario with its runs and promotions, keeping their history in an audit record, and remove its
    artifact folders once the deletion is committed. A scenario that others name as their group is refused (409)."""
    directories = [
        Path(path) for path in scenario.runs.exclude(artifact_path="").values_list("artifact_path", flat=True)
    ]
    directories.append(Path(settings.ARTIFACT_ROOT) / scenario.slug)
    with transaction.atomic():
        details = _scenario_history(scenario)
        slug = scenario.slug
        serving_version_bump()
        scenario.delete()  # ProtectedError (a 409) while member scenarios name it
        record = _audit(actor, AuditAction.SCENARIO_DELETED, slug, details)
        transaction.on_commit(lambda: _remove_artifact_folders(directories))
    return record


def _scenario_history(scenario: Scenario) -> dict[str, Any]:
    runs = [
        {
            "id": run.pk,
            "algorithm": run.algorithm,
            "status": run.status,
            "created_at": run.created_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "metrics": {name: value for name, value in run.metrics.items() if not isinstance(value, dict | list)},
            "artifact_sha256": run.artifact_sha256,
            "created_by": run.created_by.get_username() if run.created_by else None,
        }
        for run in scenario.runs.select_related("created_by").order_by("pk")
    ]
    promotions = [
        {
            "action": promotion.action,
            "run": promotion.run_id,
            "previous_run": promotion.previous_run_id,
            "actor": promotion.actor.get_username() if promotion.actor else None,
            "reason": promotion.reason,
            "at": promotion.created_at.isoformat(),
        }
        for promotion in scenario.promotions.select_related("actor").order_by("created_at", "pk")
    ]
    configuration = {
        "name": scenario.name,
        "algorithm": scenario.algorithm,
        "hyperparameters": scenario.hyperparameters,
        "live_run": scenario.live_run_id,
    }
    return {"scenario": configuration, "runs": runs, "promotions": promotions}


def _remove_artifact_folders(directories: list[Path]) -> None:
    root = Path(settings.ARTIFACT_ROOT).resolve()
    for directory in directories:
        resolved = directory.resolve()
        if resolved != root and resolved.is_relative_to(root):  # never anything outside the artifact root
            shutil.rmtree(resolved, ignore_errors=True)
            artifact_unpublish(directory=directory)


def _audit(actor: Any, action: str, subject: str, details: dict[str, Any]) -> AuditRecord:
    is_account = actor is not None and getattr(actor, "is_authenticated", False)
    return AuditRecord.objects.create(
        action=action,
        subject=subject,
        actor=actor if is_account else None,
        actor_name=actor.get_username() if is_account else "",
        details=details,
    )
