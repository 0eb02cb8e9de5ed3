"""Creating a training run: the checks made when it is queued, then its dispatch to a worker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings

from recsys_site.errors import ValidationFailed
from scenarios.models import ComputeQueue, Scenario
from scenarios.selectors import scenario_protocol, scenario_slice_size
from scenarios.services import scenario_config_clean
from training.algorithms.registry import get_algorithm
from training.blends import blend_members_check
from training.dispatch import training_run_dispatch
from training.lineage import parent_problem
from training.models import RunStatus, Study, TrainingRun
from training.splits import split_for_run


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
