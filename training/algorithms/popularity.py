"""Most-popular items: the floor every other model must beat, and the cold-start fallback."""

from collections.abc import Sequence

import numpy as np
import torch

from training.algorithms.base import EpochReport, ProgressCallback, Recommender, no_progress, validation_scores
from training.algorithms.params import Param
from training.algorithms.registry import register
from training.interactions import HeldOut, InteractionData


@register
class Popularity(Recommender):
    name = "popularity"
    label = "Popularity"
    family = "baseline"
    description = "Ranks items by how many distinct users interacted with them (or by summed event weight)."
    params = (
        Param(
            "weighted", bool, False, help="Sum event weights instead of counting distinct users.", search=(False, True)
        ),
    )

    def fit(
        self, data: InteractionData, progress: ProgressCallback = no_progress, *, validation: HeldOut | None = None
    ) -> None:
        self.n_users, self.n_items = data.n_users, data.n_items
        if self.hparams["weighted"]:
            counts = np.bincount(data.items, weights=data.weights, minlength=data.n_items)
        else:
            counts = data.distinct_users_per_item()
        self.item_scores = torch.from_numpy(counts.astype(np.float32))
        progress(EpochReport(phase="fit", step=1, total=1, validation=validation_scores(self, data, validation)))

    def score(self, users: Sequence[int] | np.ndarray) -> torch.Tensor:
        return self.item_scores.unsqueeze(0).expand(len(users), -1).clone()

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {"item_scores": self.item_scores}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.item_scores = tensors["item_scores"].float().cpu()
