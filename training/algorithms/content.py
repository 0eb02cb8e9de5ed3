"""Content-based recommender: cosine between a user's taste profile and each item's content features.

A user's profile is the recency-weighted mean of the (unit-normalised) features of the items in
their training history: the ``r``-th most recent event (``r = 0`` for the latest) weighs
``0.5 ** (r / half_life)``, optionally times the event's weight. Every item is scored, including
items with no events at all (cold start), as long as it has features: the Django side puts every
item of the scenario's filter into the item index and fills ``InteractionData.item_features`` with
the items' text embeddings (``training.content``). Items whose features are zero score 0.
"""

import numpy as np
import torch
from scipy import sparse

from training.algorithms.base import (
    DotProductRecommender,
    EpochReport,
    ProgressCallback,
    no_progress,
    validation_scores,
)
from training.algorithms.features import item_features, unit_rows
from training.algorithms.params import Param
from training.algorithms.registry import register
from training.interactions import HeldOut, InteractionData


@register
class ContentRecommender(DotProductRecommender):
    name = "content"
    label = "Content (text embeddings)"
    family = "content"
    description = (
        "Scores every item by the cosine between its text embedding and the user's profile, the "
        "recency-weighted mean of the embeddings of the items in their history; recommends items with no events."
    )
    params = (
        Param(
            "half_life",
            float,
            10.0,
            help="A history event this many events older than the user's latest counts half as much.",
            minimum=0.1,
            maximum=1e6,
        ),
        Param("use_event_weights", bool, False, help="Also multiply each event's weight into its recency weight."),
    )
    user_tensor, item_tensor = "user_profiles", "item_embeddings"  # unit vectors: the score is a cosine
    uses_item_features = True
    # Not ``explainable``: a history item's share of the score depends on its recency rank in training,
    # which a history read at serving time does not carry, so the terms would not add up to the score.

    def fit(
        self, data: InteractionData, progress: ProgressCallback = no_progress, *, validation: HeldOut | None = None
    ) -> None:
        self.n_users, self.n_items = data.n_users, data.n_items
        features = unit_rows(item_features(data, model=self.name))
        profiles = unit_rows(self._history_weights(data) @ features)
        self.item_embeddings = torch.from_numpy(features).to(self.device)
        self.user_profiles = torch.from_numpy(profiles).to(self.device)
        progress(EpochReport(phase="fit", step=1, total=1, validation=validation_scores(self, data, validation)))

    def _history_weights(self, data: InteractionData) -> sparse.csr_matrix:
        """``(n_users, n_items)`` float32: each user's recency weights, summed per item."""
        by_user = np.argsort(data.users, kind="stable")  # keeps time order within each user
        counts = np.bincount(data.users, minlength=data.n_users)
        starts = np.cumsum(counts) - counts
        position = np.empty(data.n_events, dtype=np.int64)
        position[by_user] = np.arange(data.n_events) - np.repeat(starts, counts)
        events_after = counts[data.users] - 1 - position  # 0 for each user's latest event
        weights = np.power(0.5, events_after / self.hparams["half_life"])
        if self.hparams["use_event_weights"]:
            weights = weights * data.weights
        shape = (data.n_users, data.n_items)
        return sparse.csr_matrix((weights.astype(np.float32), (data.users, data.items)), shape=shape)
