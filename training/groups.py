"""Scenario groups: one split for a group and its members, pretraining, fine-tuning and STAR domains.

A member scenario (one with a ``parent``) is split by its group: the group's slice is split by the
protocol and seed the run recorded (``training.splits``; the group's own when the run was queued, or the
parent run's for a child), and each member keeps the parts of that split that fall in its own slice. A
model pretrained on the group's training part has then never seen any member's validation or test
events, so fine-tuned, STAR and scenario-alone runs are compared fairly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scenarios.models import Scenario
from scenarios.selectors import PROTOCOL_FIELDS, scenario_protocol
from training.data import TrainingData, protocol_split, training_data_load
from training.evaluation.splits import Split, split_subset
from training.models import TrainingRun
from training.splits import split_plan, split_protocol


@dataclass(frozen=True)
class PreparedData:
    """What a run trains and is evaluated on."""

    training: TrainingData
    split: Split
    snapshot: str  # sha256 of the data that was split (the group's, for a member)
    domains: np.ndarray | None = None  # (n_events,) member index of each event, for group runs
    domain_names: list[str] | None = None


def prepared_data_load(*, scenario: Scenario, protocol: dict, seed: int) -> PreparedData:
    """The scenario's data split by ``protocol`` and ``seed``; for a member, its part of the group's data so split."""
    if scenario.parent_id is not None:
        return member_data_load(member=scenario, protocol=protocol, seed=seed)
    training = training_data_load(scenario=scenario)
    split = protocol_split(data=training.data, protocol=protocol, seed=seed)
    snapshot = training.snapshot()["sha256"]
    members = list(Scenario.objects.filter(parent=scenario).order_by("slug"))
    if not members:
        return PreparedData(training=training, split=split, snapshot=snapshot)
    return PreparedData(
        training=training,
        split=split,
        snapshot=snapshot,
        domains=_event_domains(training, members),
        domain_names=[member.slug for member in members],
    )


class SplitChanged(Exception):
    """A child run's data no longer splits as its parent's did."""


def run_split_plan(*, run: TrainingRun) -> dict[str, Any]:
    """The split the run was queued with (for a run queued before splits were recorded: its scenario's now)."""
    return run.split or split_plan(scenario=run.scenario, seed=run.seed)


def run_data_load(*, run: TrainingRun) -> PreparedData:
    """The run's data split as its record says (a child's is its parent's split), checked against the data its
    parent was split from."""
    plan = run_split_plan(run=run)
    prepared = prepared_data_load(
        scenario=scenario_as_queued(run=run),
        protocol=split_protocol(plan),
        seed=run.seed if plan["seed"] is None else plan["seed"],
    )
    if run.parent_id is not None and prepared.snapshot != plan["snapshot"]:
        raise SplitChanged(
            f"the data of {plan['source']} changed since run {run.parent_id} was trained on it "
            f"({plan['snapshot'][:8]} → {prepared.snapshot[:8]}): its split would not hold this run's test events out"
        )
    return prepared


def scenario_as_queued(*, run: TrainingRun) -> Scenario:
    """The run's scenario with the slice settings the run was queued with (later edits do not apply)."""
    scenario = run.scenario
    for name in PROTOCOL_FIELDS:
        if name in run.protocol:
            setattr(scenario, name, run.protocol[name])
    return scenario


def member_data_load(*, member: Scenario, protocol: dict | None = None, seed: int | None = None) -> PreparedData:
    """A member's events and its part of the group's split: by ``protocol`` and ``seed`` (a run's recorded
    split), or by the group's current protocol and seed when not given."""
    group = member.parent
    if group is None:
        raise ValueError(f"scenario {member.slug} is not a member of a group")
    group_training = training_data_load(scenario=group)
    group_split = protocol_split(
        data=group_training.data,
        protocol=protocol or scenario_protocol(scenario=group),
        seed=group.seed if seed is None else seed,
    )
    snapshot = group_training.snapshot()["sha256"]
    return member_part(member=member, group=PreparedData(training=group_training, split=group_split, snapshot=snapshot))


def member_part(*, member: Scenario, group: PreparedData) -> PreparedData:
    """A member's events and its part of ``group``, its group's data as read and split."""
    keep = np.isin(group.training.event_ids, training_data_load(scenario=member).event_ids)
    data, split, users, items = split_subset(group.training.data, group.split, keep)
    training = TrainingData(
        data=data,
        user_ids=group.training.user_ids[users],
        item_ids=group.training.item_ids[items],
        event_ids=group.training.event_ids[keep],
    )
    return PreparedData(training=training, split=split, snapshot=group.snapshot)


def _event_domains(training: TrainingData, members: list[Scenario]) -> np.ndarray:
    """Each group event's member index: the first member (by slug) whose slice holds it. Events in no member's
    slice (a group wider than its members) are a domain of their own, ``len(members)``, which no member is served
    from: counted as a member's, they would train and widen that member's part of the model."""
    domains = np.full(training.data.n_events, len(members), dtype=np.int64)
    for index, member in reversed(list(enumerate(members))):  # the first member's label is written last
        domains[np.isin(training.event_ids, training_data_load(scenario=member).event_ids)] = index
    return domains


def item_map(*, child_item_ids: np.ndarray, parent_item_ids: np.ndarray) -> np.ndarray:
    """For each child item, its index in the parent's (sorted) item ids, or -1 when the parent lacks it."""
    if len(parent_item_ids) == 0:
        return np.full(len(child_item_ids), -1, dtype=np.int64)
    positions = np.searchsorted(parent_item_ids, child_item_ids).clip(max=len(parent_item_ids) - 1)
    return np.where(parent_item_ids[positions] == child_item_ids, positions, -1).astype(np.int64)
