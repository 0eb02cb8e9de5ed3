"""From a scenario's slice in the database to the dense arrays the algorithms train on."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from scenarios.models import Objective, Scenario, SplitKind
from scenarios.selectors import events_time_range, scenario_item_ids, scenario_slice
from training.algorithms.registry import get_algorithm
from training.embeddings_service import item_embedding_matrix, item_embeddings_refresh
from training.evaluation.splits import Split, split_leave_last_out, split_random, split_temporal
from training.interactions import HeldOut, InteractionData, indexed_interactions


class NotEnoughData(Exception):
    """The scenario's slice is too small to train and evaluate on."""


@dataclass(frozen=True)
class TrainingData:
    """A scenario's events with dense indexes, and the database ids behind them.

    ``user_ids[u]`` is the EndUser id of dense user ``u``; ``item_ids[i]`` the Item id of item ``i``.
    """

    data: InteractionData
    user_ids: np.ndarray
    item_ids: np.ndarray
    event_ids: np.ndarray  # (n_events,) Interaction id of each event, aligned with ``data``

    def snapshot(self) -> dict:
        """Counts, time range and a hash of the training data, recorded on the run."""
        data = self.data
        digest = hashlib.sha256()
        for array in (self.user_ids[data.users], self.item_ids[data.items], data.weights, data.timestamps):
            digest.update(np.ascontiguousarray(array).tobytes())
        return {
            "users": data.n_users,
            "items": data.n_items,
            "events": data.n_events,
            **events_time_range(data.timestamps),
            "sha256": digest.hexdigest(),
        }


def training_data_load(*, scenario: Scenario) -> TrainingData:
    """The scenario's slice as :class:`TrainingData` (events in time order). Each event's weight is its kind's
    weight, or under the rating objective the event's value (the rating models learn)."""
    events = scenario_slice(scenario=scenario)
    weights = events.values if scenario.objective == Objective.RATING else events.weights
    data, user_ids, item_ids = indexed_interactions(
        events.user_ids, events.item_ids, weights.astype(np.float32), events.timestamps.astype(np.int64)
    )
    return TrainingData(
        data=data,
        user_ids=user_ids.astype(np.int64),
        item_ids=item_ids.astype(np.int64),
        event_ids=events.event_ids.astype(np.int64),
    )


def protocol_split(*, data: InteractionData, protocol: dict, seed: int) -> Split:
    """Split by the run's protocol snapshot (``split``, ``validation_share``, ``test_share``)."""
    if data.n_users < 2 or data.n_items < 2:
        raise NotEnoughData(f"the slice has {data.n_users} users and {data.n_items} items; at least 2 of each needed")
    kind = protocol["split"]
    if kind == SplitKind.LEAVE_LAST_OUT:
        split = split_leave_last_out(data)
    else:
        validation, test = float(protocol["validation_share"]), float(protocol["test_share"])
        ratios = (1.0 - validation - test, validation, test)
        split = (
            split_random(data, seed=seed, ratios=ratios)
            if kind == SplitKind.RANDOM
            else split_temporal(data, ratios=ratios)
        )
    if split.test.n_pairs == 0:
        raise NotEnoughData("the split left no test events: the slice is too small for this protocol")
    return split


# --- item features (content models) -----------------------------------------------------------


def needs_item_features(algorithm: str, params: Mapping[str, Any]) -> bool:
    """Whether ``algorithm`` trains on item features: the content model, or a model with a ``content`` mode on."""
    uses_features = getattr(get_algorithm(algorithm), "uses_item_features", False)
    return bool(uses_features) or params.get("content", "none") != "none"


def item_features_attach(
    *, training: TrainingData, split: Split, scenario: Scenario, device: str = "cpu"
) -> tuple[TrainingData, Split]:
    """Add the scenario's items without events to the item index, and every item's text embedding.

    The item index grows to every active item passing the scenario's filter (so items nobody has
    touched can be recommended); events and the split's parts are re-indexed, not re-drawn.
    ``item_features`` of the data and of the training part is ``(n_items, 384)`` float32.
    Embeddings missing or stale (the item's text changed) are computed first, on ``device``; an
    item without any text gets the zero vector.
    """
    item_ids = np.union1d(scenario_item_ids(scenario=scenario), training.item_ids).astype(np.int64)
    position = np.searchsorted(item_ids, training.item_ids)  # old dense item → new dense item, increasing
    item_embeddings_refresh(item_ids=item_ids, device=device)
    features, _ = item_embedding_matrix(item_ids)

    def grown(data: InteractionData) -> InteractionData:
        return replace(data, n_items=len(item_ids), items=position[data.items], item_features=features)

    def grown_held_out(held_out: HeldOut) -> HeldOut:
        return replace(held_out, n_items=len(item_ids), items=position[held_out.items])

    split = replace(
        split, train=grown(split.train), validation=grown_held_out(split.validation), test=grown_held_out(split.test)
    )
    return replace(training, data=grown(training.data), item_ids=item_ids), split
