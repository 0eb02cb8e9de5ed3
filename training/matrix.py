"""The scenario × model matrix of a scenario group: every run evaluated on every member's test events.

Members are split by their group (``training.groups``), so a run trained on the group, on one member
or fine-tuned on another never saw the test events of any member. A run that does not know a
member's user scores it by its training popularity; items it does not know cannot be recommended.
Each cell is compared with the member's scenario-alone model (its latest run with no parent), which
makes negative transfer visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from django.db.models import Q

from scenarios.models import Scenario
from training.artifacts import LoadedModel, artifact_load
from training.dispatch import group_matrix_dispatch
from training.evaluation.ranking import evaluate
from training.groups import item_map, member_data_load
from training.models import MatrixCell, RunStatus, TrainingRun

MATRIX_KS = (10,)


class MappedModel:
    """A trained model seen through another scenario's user and item indexes (scores only)."""

    def __init__(self, loaded: LoadedModel, user_ids: np.ndarray, item_ids: np.ndarray, domain: int | None) -> None:
        self.loaded, self.domain = loaded, domain
        self.user_positions = item_map(child_item_ids=user_ids, parent_item_ids=loaded.user_ids)
        self.item_positions = item_map(child_item_ids=item_ids, parent_item_ids=loaded.item_ids)
        self.n_items = len(item_ids)

    def score(self, users: np.ndarray) -> torch.Tensor:
        positions = self.user_positions[np.asarray(users)]
        scores = torch.from_numpy(np.repeat(self.loaded.item_popularity[None, :], len(positions), axis=0))
        known = positions >= 0
        if known.any():
            kwargs = {"domain": self.domain} if self.domain is not None else {}
            scores[torch.from_numpy(known)] = self.loaded.model.score(positions[known], **kwargs).float()
        mapped = torch.full((len(positions), self.n_items), -torch.inf)
        present = self.item_positions >= 0
        mapped[:, torch.from_numpy(present)] = scores[:, torch.from_numpy(self.item_positions[present])]
        return mapped


@dataclass(frozen=True)
class Matrix:
    runs: list[TrainingRun]
    members: list[Scenario]
    cells: dict[tuple[int, int], dict]  # (run id, scenario id) → metrics
    baselines: dict[int, int | None]  # member id → its scenario-alone run id


def group_runs(*, group: Scenario) -> list[TrainingRun]:
    return list(
        TrainingRun.objects.filter(Q(scenario=group) | Q(scenario__parent=group), status=RunStatus.SUCCEEDED)
        .select_related("scenario", "parent")
        .order_by("scenario__slug", "created_at")
    )


def group_matrix_compute(*, group: Scenario) -> int:
    """Evaluate every succeeded run of the group on every member lacking that cell; return cells made."""
    members = list(group.members.order_by("slug"))
    runs = group_runs(group=group)
    done = set(MatrixCell.objects.filter(scenario__in=members).values_list("run_id", "scenario_id"))
    made = 0
    for member in members:
        todo = [run for run in runs if (run.pk, member.pk) not in done]
        if not todo:
            continue
        prepared = member_data_load(member=member)
        split = prepared.split
        for run in todo:
            loaded = artifact_load(
                directory=Path(run.artifact_path), sha256=run.artifact_sha256, name=f"the artifact of run {run.pk}"
            )
            names = getattr(loaded.model, "domain_names", None) or []
            domain = names.index(member.slug) if member.slug in names else None
            model = MappedModel(loaded, prepared.training.user_ids, prepared.training.item_ids, domain)
            k_list = [k for k in MATRIX_KS if k <= prepared.training.data.n_items]
            result = evaluate(model, split.train, split.test, ks=k_list, exclude=split.validation)
            MatrixCell.objects.update_or_create(run=run, scenario=member, defaults={"metrics": result["metrics"]})
            made += 1
    return made


def group_matrix(*, group: Scenario) -> Matrix:
    members = list(group.members.order_by("slug"))
    runs = group_runs(group=group)
    cells = {
        (cell.run_id, cell.scenario_id): cell.metrics
        for cell in MatrixCell.objects.filter(scenario__in=members, run__in=runs)
    }
    baselines = {}
    for member in members:
        alone = [run for run in runs if run.scenario_id == member.pk and run.parent_id is None]
        baselines[member.pk] = alone[-1].pk if alone else None
    return Matrix(runs=runs, members=members, cells=cells, baselines=baselines)


def group_matrix_queue(*, group: Scenario) -> None:
    """Have a worker fill in the group's missing cells once the transaction commits."""
    group_matrix_dispatch(group_id=group.pk)
