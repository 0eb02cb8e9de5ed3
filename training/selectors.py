"""Reads of training runs for pages and the API: lists, timelines, lineage and comparisons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery

from catalog.models import EndUser
from recsys_site.errors import DomainError
from scenarios.models import Scenario
from training.comparisons import metrics_ordered
from training.evaluation.rating import RATING_METRICS
from training.matrix import OK as MATRIX_OK
from training.matrix import Matrix, group_matrix
from training.models import Promotion, PromotionAction, RunStatus, TrainingRun
from training.serving import SampleItem, sample_recommendations
from training.splits import run_settings, settings_changes, split_label


@dataclass(frozen=True)
class ScenarioRow:
    scenario: Scenario
    latest: TrainingRun | None


def scenario_rows() -> list[ScenarioRow]:
    """Every scenario (with its live run) and its latest run, by slug: three queries however many runs."""
    latest = TrainingRun.objects.filter(scenario=OuterRef("pk")).order_by("-created_at", "-id").values("id")[:1]
    latest_ids = dict(Scenario.objects.annotate(latest_run_id=Subquery(latest)).values_list("pk", "latest_run_id"))
    runs = TrainingRun.objects.in_bulk([run_id for run_id in latest_ids.values() if run_id])
    scenarios = Scenario.objects.select_related("live_run", "parent").prefetch_related("members").order_by("slug")
    return [ScenarioRow(scenario, runs.get(latest_ids.get(scenario.pk) or 0)) for scenario in _grouped(list(scenarios))]


def _grouped(scenarios: list[Scenario]) -> list[Scenario]:
    """Scenarios by slug, each group followed by its members (a member whose group is not listed stays in place)."""
    listed = {scenario.pk for scenario in scenarios}
    ordered: list[Scenario] = []

    def add(scenario: Scenario) -> None:
        ordered.append(scenario)
        for member in scenarios:
            if member.parent_id == scenario.pk:
                add(member)

    for scenario in scenarios:
        if scenario.parent_id is None or scenario.parent_id not in listed:
            add(scenario)
    return ordered


def scenario_runs(*, scenario: Scenario, limit: int = 50) -> list[TrainingRun]:
    return list(
        TrainingRun.objects.filter(scenario=scenario)
        .select_related("created_by", "parent")
        .order_by("-created_at", "-id")[:limit]
    )


@dataclass(frozen=True)
class TimelinePoint:
    run_id: int
    algorithm: str
    finished_at: datetime | None
    value: float | None
    is_live: bool
    segment: int = 0  # runs in one segment share their slice and split settings; lines never cross segments
    split: str = ""


@dataclass(frozen=True)
class TimelineChange:
    """The first run measured on other settings than the run before it: when, which run, and what changed."""

    at: datetime | None
    run_id: int
    changes: list[str]


def metric_timeline(
    *, scenario: Scenario, metric: str
) -> tuple[list[TimelinePoint], list[Promotion], list[TimelineChange]]:
    """Each succeeded run's ``metric`` by finish time, the promotions and rollbacks, and where the slice or the
    split changed (a new group, protocol, shares, seed or filter): metrics on either side measure other things."""
    runs = TrainingRun.objects.filter(scenario=scenario, status=RunStatus.SUCCEEDED).order_by("finished_at", "id")
    points, changes = [], []
    previous: dict[str, Any] | None = None
    for run in runs.select_related("scenario").only(
        "id", "algorithm", "finished_at", "metrics", "protocol", "split", "seed", "scenario__slug"
    ):
        settings = run_settings(run) or previous  # a run that recorded no settings stays in its neighbours' segment
        if previous is not None and settings is not None and settings != previous:
            changes.append(TimelineChange(run.finished_at, run.pk, settings_changes(previous, settings)))
        previous = settings
        live = run.pk == scenario.live_run_id
        points.append(
            TimelinePoint(
                run.pk,
                run.algorithm,
                run.finished_at,
                run.metrics.get(metric),
                live,
                len(changes),
                split_label(run.split),
            )
        )
    promotions = list(Promotion.objects.filter(scenario=scenario).select_related("actor").order_by("created_at"))
    return points, promotions, changes


@dataclass(frozen=True)
class SplitUse:
    label: str
    runs: int
    first: datetime | None
    last: datetime | None


def scenario_split_uses(*, scenario: Scenario, limit: int = 10) -> list[SplitUse]:
    """The splits the scenario's succeeded runs were evaluated on, the latest used first."""
    uses: dict[str, list[datetime | None]] = {}
    runs = TrainingRun.objects.filter(scenario=scenario, status=RunStatus.SUCCEEDED).order_by("-finished_at", "-id")
    for split, finished_at in runs.values_list("split", "finished_at"):
        uses.setdefault(split_label(split), []).append(finished_at)
    return [
        SplitUse(label, len(times), min(times, key=_time_or_min), max(times, key=_time_or_min))
        for label, times in list(uses.items())[:limit]
    ]


def _time_or_min(value: datetime | None) -> datetime:
    return value or datetime.min.replace(tzinfo=UTC)


def run_lineage(*, run: TrainingRun) -> tuple[list[TrainingRun], list[TrainingRun]]:
    """Ancestors (nearest first) and direct children of a run."""
    ancestors, seen = [], {run.pk}
    current = run.parent
    while current is not None and current.pk not in seen:
        ancestors.append(current)
        seen.add(current.pk)
        current = current.parent
    children = list(TrainingRun.objects.filter(parent=run).order_by("created_at"))
    return ancestors, children


def scenario_succeeded_runs(*, scenario: Scenario) -> QuerySet[TrainingRun]:
    """The runs of ``scenario`` that can be compared, promoted or sampled, newest first."""
    return TrainingRun.objects.filter(scenario=scenario, status=RunStatus.SUCCEEDED).order_by("-created_at")


def runs_chosen(*, scenario: Scenario, ids: list[int]) -> list[TrainingRun]:
    """The succeeded runs of ``scenario`` among ``ids``, in the order of ``ids`` (others are left out)."""
    runs = scenario_succeeded_runs(scenario=scenario).in_bulk(ids)
    return [runs[run_id] for run_id in dict.fromkeys(ids) if run_id in runs]


@dataclass(frozen=True)
class MatrixTable:
    """A group's matrix as rows (runs) × columns (members) for one metric: each cell's value (None where there is
    none: missing or n/a), its change against the member's baseline (current cells only), its state and why."""

    matrix: Matrix
    metric: str
    labels: list[str]
    values: list[list[float | None]]
    deltas: list[list[float | None]]
    states: list[list[str]]
    reasons: list[list[str]]

    @property
    def complete(self) -> bool:
        return self.matrix.complete


def group_matrix_table(
    *, group: Scenario, metric: str = "ndcg@10", baselines: dict[int, int] | None = None
) -> MatrixTable:
    matrix = group_matrix(group=group, baselines=baselines)
    rows = [[matrix.cells[(run.pk, member.pk)] for member in matrix.members] for run in matrix.runs]
    values = [[cell.metrics.get(metric) for cell in row] for row in rows]
    base = [
        matrix.cells[(run_id, member.pk)].metrics.get(metric) if run_id is not None else None
        for member, run_id in ((member, matrix.baselines[member.pk]) for member in matrix.members)
    ]
    deltas = [
        [
            None if cell.state != MATRIX_OK or value is None or reference is None else value - reference
            for cell, value, reference in zip(row, value_row, base, strict=True)
        ]
        for row, value_row in zip(rows, values, strict=True)
    ]
    labels = [f"run {run.pk} · {run.algorithm} · {run.scenario.slug}" for run in matrix.runs]
    return MatrixTable(
        matrix=matrix,
        metric=metric,
        labels=labels,
        values=values,
        deltas=deltas,
        states=[[cell.state for cell in row] for row in rows],
        reasons=[[cell.reason for cell in row] for row in rows],
    )


def matrix_groups() -> list[Scenario]:
    """Every scenario with member scenarios (a group), by slug, with its members."""
    return list(Scenario.objects.filter(members__isnull=False).distinct().order_by("slug").prefetch_related("members"))


@dataclass(frozen=True)
class SampleList:
    title: str
    run: TrainingRun
    items: list[SampleItem]
    error: str = ""


def sample_lists(*, scenario: Scenario, user: EndUser, k: int, other: TrainingRun | None) -> list[SampleList]:
    """The live model's top-k for ``user`` and, beside it, another run's (when it is not the live one)."""
    live = scenario.live_run
    columns = [(f"Live model · run {live.pk}", live)] if live is not None else []
    if other is not None and other.pk != scenario.live_run_id:
        columns.append((f"Run {other.pk}", other))
    lists = []
    for title, run in columns:
        try:
            lists.append(SampleList(title, run, sample_recommendations(scenario=scenario, run=run, user=user, k=k)))
        except DomainError as error:
            lists.append(SampleList(title, run, [], error=str(error.detail)))
    return lists


def sample_lists_shared(lists: list[SampleList]) -> set[int]:
    """Ids of the items every list recommends (nothing to share with a single list)."""
    if len(lists) < 2:
        return set()
    return set.intersection(*[{item.item_id for item in entry.items} for entry in lists])


# --- the registry: what served a scenario ---------------------------------------------------------


def rollback_target(*, scenario: Scenario) -> TrainingRun | None:
    """The run a rollback would put back: the one below the live run on the serving stack, or None."""
    stack = serving_stack(scenario=scenario)
    if len(stack) < 2 or stack[-1] != scenario.live_run_id or stack[-2] is None:
        return None
    return TrainingRun.objects.filter(pk=stack[-2]).first()


def serving_stack(*, scenario: Scenario) -> list[int | None]:
    """The runs that served ``scenario``, oldest first, as its history leaves them: a promotion pushes its run,
    a rollback pops the live one. The last entry is the live run."""
    stack: list[int | None] = []
    for action, run_id in (
        Promotion.objects.filter(scenario=scenario).order_by("created_at", "id").values_list("action", "run_id")
    ):
        if action == PromotionAction.PROMOTE:
            stack.append(run_id)
        elif stack:
            stack.pop()
    return stack


def promotion_history(*, scenario: Scenario, limit: int = 50) -> list[Promotion]:
    """The scenario's promotions and rollbacks, newest first, with their runs and actors."""
    return list(
        Promotion.objects.filter(scenario=scenario)
        .select_related("run", "previous_run", "actor")
        .order_by("-created_at", "-id")[:limit]
    )


# --- the runs table: a column per metric and hyperparameter ---------------------------------------------

FIXED_COLUMNS = ("run", "algorithm", "status", "created", "duration", "seed", "parent")


@dataclass(frozen=True)
class RunsTableRow:
    run: TrainingRun
    values: dict[str, Any]  # column key ("run", "metric:ndcg@10", "param:l2") → value


@dataclass(frozen=True)
class RunsTable:
    metrics: list[str]
    hyperparameters: list[str]
    rows: list[RunsTableRow]
    sort: str
    descending: bool
    every_hyperparameter: bool


def runs_table(
    *, scenario: Scenario, sort: str = "created", descending: bool = True, every_hyperparameter: bool = False
) -> RunsTable:
    """Every run of ``scenario`` (newest 500) with a column per metric (at every K) and per hyperparameter,
    sorted by any column (runs without a value last). Hyperparameters that are the same for every run are left
    out unless ``every_hyperparameter``."""
    runs = list(TrainingRun.objects.filter(scenario=scenario).order_by("-created_at", "-id")[:500])
    metrics = _metric_columns(runs)
    hyperparameters = _hyperparameter_columns(runs, every=every_hyperparameter)
    rows = [RunsTableRow(run, _row_values(run, metrics, hyperparameters)) for run in runs]
    columns = {*FIXED_COLUMNS, *(f"metric:{m}" for m in metrics), *(f"param:{h}" for h in hyperparameters)}
    if sort not in columns:
        sort, descending = "created", True
    present = sorted((row for row in rows if row.values[sort] is not None), key=lambda row: _sortable(row.values[sort]))
    missing = [row for row in rows if row.values[sort] is None]
    return RunsTable(
        metrics,
        hyperparameters,
        (present[::-1] if descending else present) + missing,
        sort,
        descending,
        every_hyperparameter,
    )


def _metric_columns(runs: list[TrainingRun]) -> list[str]:
    names = metrics_ordered(name for run in runs for name in run.metrics)
    rating = [name for name in RATING_METRICS if any(name in run.metrics for run in runs)]  # rating scenarios'
    return rating + names + (["evaluated_users"] if any("evaluated_users" in r.metrics for r in runs) else [])


def _hyperparameter_columns(runs: list[TrainingRun], *, every: bool) -> list[str]:
    names = sorted({name for run in runs for name in run.params})
    if every:
        return names
    differing = [name for name in names if len({repr(run.params.get(name)) for run in runs}) > 1]
    return differing or names


def _row_values(run: TrainingRun, metrics: list[str], hyperparameters: list[str]) -> dict[str, Any]:
    duration = (run.finished_at - run.started_at).total_seconds() if run.started_at and run.finished_at else None
    values: dict[str, Any] = {
        "run": run.pk,
        "algorithm": run.algorithm,
        "status": run.status,
        "created": run.created_at,
        "duration": duration,
        "seed": run.seed,
        "parent": run.parent_id,
    }
    values.update({f"metric:{name}": run.metrics.get(name) for name in metrics})
    values.update({f"param:{name}": run.params.get(name) for name in hyperparameters})
    return values


def _sortable(value: Any) -> tuple[int, Any]:
    """Numbers before text, each in its own order (a column may mix them, e.g. a parameter set per algorithm)."""
    if isinstance(value, bool | int | float):
        return (0, float(value))
    if isinstance(value, datetime):
        return (0, value.timestamp())
    return (1, str(value))
