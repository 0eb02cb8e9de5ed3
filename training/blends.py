"""Blend runs: which runs may be mixed, and attaching their trained models to a blend on the worker."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recsys_site.errors import ValidationFailed
from scenarios.models import Scenario
from training.algorithms.registry import get_algorithm
from training.artifacts import artifact_load
from training.data import NotEnoughData, TrainingData
from training.models import RunStatus, TrainingRun


def blend_members_check(*, scenario: Scenario, algorithm: str, members: Sequence[TrainingRun], seed: int) -> None:
    """A blend takes two or more succeeded runs of its scenario on the same protocol and seed (the same split);
    any other algorithm takes none."""
    if not getattr(get_algorithm(algorithm), "needs_members", False):
        if members:
            raise ValidationFailed("no members", detail={"members": [f"{algorithm} does not blend runs"]})
        return
    problems = []
    if len({run.pk for run in members}) < 2:
        problems.append("name at least two different runs")
    for run in members:
        if run.scenario_id != scenario.pk:
            problems.append(f"run {run.pk} is not a run of {scenario.slug}")
        elif run.status != RunStatus.SUCCEEDED:
            problems.append(f"run {run.pk} is {run.status}; only succeeded runs can be blended")
        elif run.algorithm == algorithm:
            problems.append(f"run {run.pk} is itself a blend")
        elif run.seed != seed or run.protocol.get("split") != scenario.split:
            problems.append(f"run {run.pk} was split differently (seed or protocol): blend runs of one split")
    if problems:
        raise ValidationFailed("bad members", detail={"members": problems})


def blend_members_attach(*, model: Any, run: TrainingRun, training: TrainingData) -> None:
    """Load the members' artifacts onto the blend; each must index the same users and items as this run."""
    loaded = []
    for member in run.members.order_by("pk"):
        artifact = artifact_load(
            directory=Path(member.artifact_path),
            sha256=member.artifact_sha256,
            device=str(model.device),
            name=f"the artifact of member run {member.pk}",
        )
        same = np.array_equal(artifact.user_ids, training.user_ids) and np.array_equal(
            artifact.item_ids, training.item_ids
        )
        if not same:
            raise NotEnoughData(f"the scenario's data changed since member run {member.pk}: retrain the members")
        loaded.append(artifact.model)
    model.attach_members(loaded)
