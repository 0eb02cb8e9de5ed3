"""Scenario groups: one split for a group and its members, pretraining, fine-tuning and STAR domains.

A member scenario (one with a ``parent``) is split by its group: the group's slice is split by the
group's protocol and seed, and each member keeps the parts of that split that fall in its own
slice. A model pretrained on the group's training part has then never seen any member's
validation or test events, so fine-tuned, STAR and scenario-alone runs are compared fairly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scenarios.models import Scenario
from scenarios.selectors import scenario_protocol
from training.data import TrainingData, protocol_split, training_data_load
from training.evaluation.splits import Split, split_subset


@dataclass(frozen=True)
class PreparedData:
    """What a run trains and is evaluated on."""

    training: TrainingData
    split: Split
    domains: np.ndarray | None = None  # (n_events,) member index of each event, for group runs
    domain_names: list[str] | None = None


def prepared_data_load(*, scenario: Scenario, protocol: dict, seed: int) -> PreparedData:
    """The scenario's data and split: its own, or for a member, its part of the group's split."""
    if scenario.parent_id is not None:
        return member_data_load(member=scenario)
    training = training_data_load(scenario=scenario)
    split = protocol_split(data=training.data, protocol=protocol, seed=seed)
    members = list(Scenario.objects.filter(parent=scenario).order_by("slug"))
    if not members:
        return PreparedData(training=training, split=split)
    return PreparedData(
        training=training,
        split=split,
        domains=_event_domains(training, members),
        domain_names=[member.slug for member in members],
    )


def member_data_load(*, member: Scenario) -> PreparedData:
    """A member's events and its part of the group's split (by the group's protocol and seed)."""
    group = member.parent
    if group is None:
        raise ValueError(f"scenario {member.slug} is not a member of a group")
    group_training = training_data_load(scenario=group)
    group_split = protocol_split(data=group_training.data, protocol=scenario_protocol(scenario=group), seed=group.seed)
    own_events = training_data_load(scenario=member).event_ids
    keep = np.isin(group_training.event_ids, own_events)
    data, split, users, items = split_subset(group_training.data, group_split, keep)
    training = TrainingData(
        data=data,
        user_ids=group_training.user_ids[users],
        item_ids=group_training.item_ids[items],
        event_ids=group_training.event_ids[keep],
    )
    return PreparedData(training=training, split=split)


def _event_domains(training: TrainingData, members: list[Scenario]) -> np.ndarray:
    """Each group event's member index: the first member (by slug) whose slice holds it; 0 for none."""
    domains = np.full(training.data.n_events, -1, dtype=np.int64)
    for index, member in enumerate(members):
        mine = np.isin(training.event_ids, training_data_load(scenario=member).event_ids) & (domains < 0)
        domains[mine] = index
    domains[domains < 0] = 0
    return domains


def item_map(*, child_item_ids: np.ndarray, parent_item_ids: np.ndarray) -> np.ndarray:
    """For each child item, its index in the parent's (sorted) item ids, or -1 when the parent lacks it."""
    if len(parent_item_ids) == 0:
        return np.full(len(child_item_ids), -1, dtype=np.int64)
    positions = np.searchsorted(parent_item_ids, child_item_ids).clip(max=len(parent_item_ids) - 1)
    return np.where(parent_item_ids[positions] == child_item_ids, positions, -1).astype(np.int64)
