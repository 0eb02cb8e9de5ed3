"""The scenario × model matrix of a scenario group: a record of every run evaluated on every member's test events.

Members are split by their group (``training.groups``), so a run trained on the group's current split, on one
member or fine-tuned on another never saw the test events of any member. The group's split now is its settings
and the sha256 of its data (``snapshot``): new events, back-dated ones included, draw another split. Each cell
records the split it was computed on; a cell whose split is no longer the group's (its protocol, shares, seed or
data changed) is stale until computed again. A cell that would mean nothing is "n/a": a model trained on one
member scored on another, or a run trained on another split of the group, other data included (it may have
trained on the member's test events now). Test is scored as the run's own evaluation scored it
(``scorer_for_test``): a sequential model reads each user's training and validation events in the data it was
trained on (the group's for a group run). A run that does not know a member's user scores it by its training
popularity; items it does not know cannot be recommended. Each member's column is compared with a baseline run
of the member: by default its best run on the member's validation events, or the one the analyst picks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from catalog.models import Interaction
from recsys_site.errors import ValidationFailed
from recsys_site.serving_version import catalog_version_get
from scenarios.models import Scenario, SplitKind
from scenarios.selectors import scenario_protocol
from training.artifacts import LoadedModel, artifact_load
from training.data import TrainingData, protocol_split, training_data_load
from training.dispatch import matrix_job_dispatch
from training.evaluation.ranking import Scorer, evaluate, scorer_for_test
from training.groups import PreparedData, item_map, member_part
from training.interactions import InteractionData
from training.models import MatrixCell, MatrixJob, RunStatus, TrainingRun
from training.progress import Heartbeat
from training.splits import pairs_digest, split_changes

OK, STALE, MISSING, NOT_APPLICABLE = "ok", "stale", "missing", "n/a"
VALIDATION_METRIC = "ndcg@10"


class MappedModel:
    """A trained model seen through another scenario's user and item indexes (scores only): ``scorer`` is the
    model, or the model after given histories (:func:`_test_scorer`), in the indexes of ``loaded``."""

    def __init__(
        self, scorer: Scorer, loaded: LoadedModel, user_ids: np.ndarray, item_ids: np.ndarray, domain: int | None
    ) -> None:
        self.scorer, self.loaded, self.domain = scorer, loaded, domain
        self.user_positions = item_map(child_item_ids=user_ids, parent_item_ids=loaded.user_ids)
        self.item_positions = item_map(child_item_ids=item_ids, parent_item_ids=loaded.item_ids)
        self.n_items = len(item_ids)

    def score(self, users: np.ndarray) -> torch.Tensor:
        positions = self.user_positions[np.asarray(users)]
        scores = torch.from_numpy(np.repeat(self.loaded.item_popularity[None, :], len(positions), axis=0))
        known = positions >= 0
        if known.any():
            kwargs = {"domain": self.domain} if self.domain is not None else {}
            scores[torch.from_numpy(known)] = self.scorer.score(positions[known], **kwargs).float()
        mapped = torch.full((len(positions), self.n_items), -torch.inf)
        present = self.item_positions >= 0
        mapped[:, torch.from_numpy(present)] = scores[:, torch.from_numpy(self.item_positions[present])]
        return mapped


# --- the group's split -------------------------------------------------------------------------------


def group_split_now(*, group: Scenario, group_data: TrainingData | None = None) -> dict:
    """The group's split as it is now: source, protocol, shares (not for leave-last-out), seed (random splits
    only: the others do not read it) and the sha256 of the group's data (``snapshot``; ``group_data`` is the
    group's data when the caller has read it)."""
    shares = group.split != SplitKind.LEAVE_LAST_OUT
    return {
        "source": group.slug,
        "protocol": group.split,
        "validation_share": float(group.validation_share) if shares else None,
        "test_share": float(group.test_share) if shares else None,
        "seed": int(group.seed) if group.split == SplitKind.RANDOM else None,
        "snapshot": group_data.snapshot()["sha256"] if group_data is not None else _group_snapshot(group),
    }


SNAPSHOT_KEPT_SECONDS = 60


def _group_snapshot(group: Scenario) -> str:
    """The sha256 of the group's data, kept in the cache while no event is added or deleted, the catalogue's version
    holds and neither the group's settings nor a member's change (a minute at most, the only bound for changes
    written around the services), so a matrix page polled while a job runs does not read every event each time."""
    catalog = catalog_version_get()
    if catalog is None:  # Redis unreachable, or a catalogue never versioned: nothing says when the items changed
        return training_data_load(scenario=group).snapshot()["sha256"]
    with connection.cursor() as cursor:  # any insert raises the largest id, any delete lowers the count
        cursor.execute(f"SELECT count(*), coalesce(max(id), 0) FROM {Interaction._meta.db_table}")
        events = cursor.fetchone()
    members = group.members.aggregate(changed=Max("updated_at"))["changed"]
    state = repr((group.pk, group.updated_at, members, catalog, events))
    key = "matrix-group-snapshot:" + hashlib.sha256(state.encode()).hexdigest()
    snapshot = cache.get(key)
    if snapshot is None:
        snapshot = training_data_load(scenario=group).snapshot()["sha256"]
        cache.set(key, snapshot, SNAPSHOT_KEPT_SECONDS)
    return snapshot


def same_split(recorded: dict, current: dict) -> bool:
    """Whether ``recorded`` is the split ``current`` describes (every field ``current`` names is equal)."""
    return bool(recorded) and all(recorded.get(name) == value for name, value in current.items())


def _run_settings(run: TrainingRun) -> dict:
    """The split a group run that recorded none was trained on: its protocol snapshot (``split``, shares), seed
    and data snapshot."""
    protocol = run.protocol or {}
    kind = protocol.get("split")
    shares = kind != SplitKind.LEAVE_LAST_OUT
    return {
        "source": run.scenario.slug,
        "protocol": kind,
        "validation_share": float(protocol.get("validation_share", 0)) if shares else None,
        "test_share": float(protocol.get("test_share", 0)) if shares else None,
        "seed": int(run.seed) if kind == SplitKind.RANDOM else None,
        "snapshot": (run.data_snapshot or {}).get("sha256"),
    }


def not_applicable(*, run: TrainingRun, member: Scenario, group: Scenario, split_now: dict) -> str:
    """Why ``run`` cannot be scored on ``member`` in a meaningful way; "" when it can."""
    if run.chosen_run_id is not None:
        return f"an auto run: the run it chose, run {run.chosen_run_id}, has its own row"
    if run.scenario_id not in (group.pk, member.pk):
        return f"trained on {run.scenario.slug} only"
    trained_on = getattr(run, "split", None) or {}
    if not trained_on and run.scenario_id == group.pk:
        trained_on = _run_settings(run)
    if not trained_on:  # a member run from before runs recorded their split: its data is the member's, not the group's
        return "trained before runs recorded their split: which split of the group it saw is unknown"
    if not same_split(trained_on, split_now):
        changes = "; ".join(split_changes(trained_on, split_now))
        return f"trained on another split of the group ({changes}): it may have seen this member's test events"
    return ""


# --- computing cells -------------------------------------------------------------------------------


def group_runs(*, group: Scenario) -> list[TrainingRun]:
    return list(
        TrainingRun.objects.filter(Q(scenario=group) | Q(scenario__parent=group), status=RunStatus.SUCCEEDED)
        .select_related("scenario", "parent")
        .order_by("scenario__slug", "created_at", "id")
    )


def group_matrix_compute(*, group: Scenario) -> int:
    """Compute every cell of the group that is missing or stale (and not n/a); return how many were computed."""
    members = list(group.members.order_by("slug"))
    runs = group_runs(group=group)
    group_data = training_data_load(scenario=group)
    split_now = group_split_now(group=group, group_data=group_data)
    recorded = {(cell.run_id, cell.scenario_id): cell.split for cell in MatrixCell.objects.filter(scenario__in=members)}
    todo = {
        member: [
            run
            for run in runs
            if run.artifact_path  # the retention policy may have deleted a model: its recorded cells stay
            and not not_applicable(run=run, member=member, group=group, split_now=split_now)
            and not same_split(recorded.get((run.pk, member.pk), {}), split_now)
        ]
        for member in members
    }
    if not any(todo.values()):
        return 0
    group_prepared = _group_data_split(group, group_data, split_now)  # read once: each member's part comes from it
    return sum(
        _member_cells_compute(group, member, member_runs, split_now, group_prepared)
        for member, member_runs in todo.items()
        if member_runs
    )


def _group_data_split(group: Scenario, group_data: TrainingData, split_now: dict) -> PreparedData:
    """The group's data split as it is now: how every group run still in the matrix was split, and what each
    member's part is cut from."""
    split = protocol_split(data=group_data.data, protocol=scenario_protocol(scenario=group), seed=group.seed)
    return PreparedData(training=group_data, split=split, snapshot=split_now["snapshot"])


def _test_scorer(loaded: LoadedModel, trained_on: PreparedData) -> Scorer:
    """The run's model as the run's own evaluation scored test (``scorer_for_test``): a sequential model after
    each user's training and validation events of the data it was trained on (``trained_on``, split as the run
    was), put in the model's indexes."""
    training = trained_on.training
    users = item_map(child_item_ids=training.user_ids, parent_item_ids=loaded.user_ids)
    items = item_map(child_item_ids=training.item_ids, parent_item_ids=loaded.item_ids)

    def to_model(history: InteractionData) -> InteractionData:
        user, item = users[history.users], items[history.items]
        known = (user >= 0) & (item >= 0)
        return InteractionData(
            n_users=len(loaded.user_ids),
            n_items=len(loaded.item_ids),
            users=user[known],
            items=item[known],
            weights=history.weights[known],
            timestamps=history.timestamps[known],
        )

    return scorer_for_test(loaded.model, training.data, trained_on.split, to_model=to_model)


def _member_cells_compute(
    group: Scenario, member: Scenario, runs: list[TrainingRun], split_now: dict, group_prepared: PreparedData
) -> int:
    prepared = member_part(member=member, group=group_prepared)
    training, split = prepared.training, prepared.split
    split_record = split_now | {
        "test_digest": pairs_digest(held_out=split.test, user_ids=training.user_ids, item_ids=training.item_ids),
        "test_pairs": int(split.test.n_pairs),
    }
    ks = [k for k in group.k_list if k <= training.data.n_items] or [training.data.n_items]
    for run in runs:
        loaded = artifact_load(directory=Path(run.artifact_path), sha256=run.artifact_sha256)
        names = getattr(loaded.model, "domain_names", None) or []
        domain = names.index(member.slug) if member.slug in names else None
        trained_on = group_prepared if run.scenario_id == group.pk else prepared
        tested = MappedModel(_test_scorer(loaded, trained_on), loaded, training.user_ids, training.item_ids, domain)
        result = evaluate(tested, split.train, split.test, ks=ks, exclude=split.validation)
        model = MappedModel(loaded.model, loaded, training.user_ids, training.item_ids, domain)
        validation = {}
        if split.validation.n_pairs and training.data.n_items >= 10:
            validation = evaluate(model, split.train, split.validation, ks=[10])["metrics"]
        MatrixCell.objects.update_or_create(
            run=run,
            scenario=member,
            defaults={
                "metrics": {**result["metrics"], "evaluated_users": result["n_users"]},
                "validation": {VALIDATION_METRIC: validation.get(VALIDATION_METRIC)} if validation else {},
                "split": split_record,
            },
        )
    return len(runs)


# --- jobs ------------------------------------------------------------------------------------------


def matrix_job_create(*, group: Scenario, created_by=None, dispatch: bool = True) -> MatrixJob:
    """Queue a computation of the group's missing and stale cells (``dispatch=False``: the caller runs it with
    :func:`matrix_job_execute`); a group without members is refused."""
    if not group.members.exists():
        raise ValidationFailed(
            "not a group",
            detail={"scenario": [f"{group.slug} has no member scenarios: set it as the parent of member scenarios"]},
        )
    with transaction.atomic():
        job = MatrixJob.objects.create(group=group, created_by=created_by)
        if dispatch:
            matrix_job_dispatch(job=job)
    return job


def matrix_job_execute(*, job_id: int) -> str:
    """Claim the queued job, compute the cells and record how it went (a second delivery does nothing)."""
    now = timezone.now()
    claimed = MatrixJob.objects.filter(pk=job_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=now, heartbeat_at=now
    )
    if not claimed:
        return MatrixJob.objects.filter(pk=job_id).values_list("status", flat=True).first() or "missing"
    job = MatrixJob.objects.select_related("group").get(pk=job_id)
    try:
        with Heartbeat(MatrixJob, job_id):
            made = group_matrix_compute(group=job.group)
    except Exception as error:  # any failure is recorded on the job, never lost
        return matrix_job_finish(job_id=job_id, status=RunStatus.FAILED, error=f"{type(error).__name__}: {error}")
    return matrix_job_finish(job_id=job_id, status=RunStatus.SUCCEEDED, cells_computed=made)


def matrix_job_finish(*, job_id: int, status: str, error: str = "", cells_computed: int = 0) -> str:
    MatrixJob.objects.filter(pk=job_id, status=RunStatus.RUNNING).update(
        status=status, error=error, cells_computed=cells_computed, finished_at=timezone.now()
    )
    return status


def group_matrix_queue(*, group: Scenario, created_by=None) -> MatrixJob:
    """Have a worker compute the group's missing and stale cells once the transaction commits."""
    return matrix_job_create(group=group, created_by=created_by)


# --- reading the matrix ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """What the matrix shows for one run on one member: ``state`` is ok, stale, missing or n/a (``reason``)."""

    state: str
    metrics: dict
    validation: dict
    split: dict
    reason: str = ""


@dataclass(frozen=True)
class Matrix:
    group: Scenario
    runs: list[TrainingRun]
    members: list[Scenario]
    cells: dict[tuple[int, int], Cell]  # (run id, member id) → cell
    baselines: dict[int, int | None]  # member id → its baseline run id
    chosen: dict[int, bool]  # member id → whether the analyst picked the baseline (else the default)
    settings: dict  # the group's split now (``group_split_now``: its settings and data snapshot)
    latest_job: MatrixJob | None

    @property
    def complete(self) -> bool:
        return all(cell.state in (OK, NOT_APPLICABLE) for cell in self.cells.values())

    def baseline_metrics(self, member: Scenario) -> dict:
        """The metrics of ``member``'s baseline run on ``member``; empty when it has no baseline."""
        baseline = self.baselines[member.pk]
        return self.cells[(baseline, member.pk)].metrics if baseline is not None else {}


def group_matrix(*, group: Scenario, baselines: dict[int, int] | None = None) -> Matrix:
    """The group's matrix; ``baselines`` (member id → run id) overrides the default baseline of those members."""
    members = list(group.members.order_by("slug"))
    runs = group_runs(group=group)
    split_now = group_split_now(group=group)
    stored = {(cell.run_id, cell.scenario_id): cell for cell in MatrixCell.objects.filter(scenario__in=members)}
    cells = {
        (run.pk, member.pk): _cell(run, member, group, split_now, stored.get((run.pk, member.pk)))
        for run in runs
        for member in members
    }
    chosen = _checked_baselines(baselines or {}, members, runs, cells)
    defaults = {member.pk: _best_on_validation(member, runs, cells) for member in members}
    return Matrix(
        group=group,
        runs=runs,
        members=members,
        cells=cells,
        baselines={member.pk: chosen.get(member.pk, defaults[member.pk]) for member in members},
        chosen={member.pk: member.pk in chosen for member in members},
        settings=split_now,
        latest_job=MatrixJob.objects.filter(group=group).first(),
    )


def _cell(run: TrainingRun, member: Scenario, group: Scenario, split_now: dict, stored: MatrixCell | None) -> Cell:
    reason = not_applicable(run=run, member=member, group=group, split_now=split_now)
    if reason:
        return Cell(NOT_APPLICABLE, {}, {}, stored.split if stored else {}, reason)
    if stored is None:
        return Cell(MISSING, {}, {}, {}, "not computed yet")
    if not same_split(stored.split, split_now):
        changes = "; ".join(split_changes(stored.split, split_now))
        return Cell(
            STALE,
            stored.metrics,
            stored.validation,
            stored.split,
            f"computed on another split of the group ({changes})",
        )
    return Cell(OK, stored.metrics, stored.validation, stored.split)


def _best_on_validation(member: Scenario, runs: list[TrainingRun], cells: dict[tuple[int, int], Cell]) -> int | None:
    """The member's own run with the best validation NDCG@10 on the member (ties: the later run)."""
    scored = [
        (cells[(run.pk, member.pk)].validation.get(VALIDATION_METRIC), run.pk)
        for run in runs
        if run.scenario_id == member.pk and cells[(run.pk, member.pk)].state == OK
    ]
    scored = [(value, run_id) for value, run_id in scored if value is not None]
    return max(scored)[1] if scored else None


def _checked_baselines(
    baselines: dict[int, int], members: list[Scenario], runs: list[TrainingRun], cells: dict[tuple[int, int], Cell]
) -> dict[int, int]:
    member_ids, run_ids = {member.pk for member in members}, {run.pk for run in runs}
    errors = []
    for member_id, run_id in baselines.items():
        if member_id not in member_ids or run_id not in run_ids:
            errors.append(f"run {run_id} is not a succeeded run of this group, or scenario {member_id} not a member")
        elif cells[(run_id, member_id)].state != OK:
            errors.append(f"run {run_id} has no current cell on that member ({cells[(run_id, member_id)].reason})")
    if errors:
        raise ValidationFailed("bad baseline", detail={"baseline": errors})
    return baselines


def baselines_parse(*, group: Scenario, values: list[str]) -> dict[int, int]:
    """``["action:12", …]`` (member slug, run id) as ``{member id: run id}``; a malformed value is refused."""
    slugs = dict(group.members.values_list("slug", "pk"))
    parsed, errors = {}, []
    for value in values:
        slug, _, run_id = value.partition(":")
        if slug not in slugs or not run_id.isdigit():
            errors.append(f"{value!r}: expected MEMBER:RUN_ID with a member of {group.slug} ({', '.join(slugs)})")
        else:
            parsed[slugs[slug]] = int(run_id)
    if errors:
        raise ValidationFailed("bad baseline", detail={"baseline": errors})
    return parsed
