"""A blend of two or more trained models of the same data: per-user normalised scores mixed by weights fitted
on validation (``training.evaluation.blending``); equal weights without a validation set."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors.torch import load_file

from training.algorithms.base import (
    ARTIFACT_METADATA,
    ARTIFACT_TENSORS,
    EpochReport,
    ProgressCallback,
    Recommender,
    no_progress,
)
from training.algorithms.registry import get_algorithm, register
from training.evaluation.blending import BlendFit, blend_weights_fit, per_user_normalised
from training.interactions import HeldOut, InteractionData


@register
class Blend(Recommender):
    name = "blend"
    label = "Blend"
    family = "ensemble"
    description = (
        "Mixes the scores of two or more succeeded runs of the scenario (same split), each normalised per user, "
        "with weights chosen on validation NDCG@10 (no more weight off the best member than the evidence supports)."
    )
    needs_members: ClassVar[bool] = True

    def __init__(self, params=None, *, device: str | torch.device = "cpu", seed: int = 0) -> None:
        super().__init__(params, device=device, seed=seed)
        self.members: list[Recommender] = []
        self.weights: tuple[float, ...] = ()

    def attach_members(self, members: Sequence[Recommender]) -> None:
        """The trained members, each over this model's users and items; call before :meth:`fit`."""
        if len(members) < 2:
            raise ValueError("a blend needs at least two members")
        self.members = list(members)

    def fit(
        self, data: InteractionData, progress: ProgressCallback = no_progress, *, validation: HeldOut | None = None
    ) -> None:
        if not self.members:
            raise ValueError("attach the members before fitting a blend")
        self.n_users, self.n_items = data.n_users, data.n_items
        if any((m.n_users, m.n_items) != (data.n_users, data.n_items) for m in self.members):
            raise ValueError("every member must score the blend's users and items")
        scores = [member.score(np.arange(data.n_users)) for member in self.members]
        measured: dict[str, float] = {}
        if validation is not None and validation.n_pairs:
            fitted = blend_weights_fit(scores, data, validation)
            self.weights = fitted.weights
            measured = _fit_record(fitted)
        else:
            self.weights = tuple(1 / len(self.members) for _ in self.members)
        progress(EpochReport(phase="fit", step=1, total=1, validation=measured))

    @torch.no_grad()
    def score(self, users: Sequence[int] | np.ndarray) -> torch.Tensor:
        parts = [
            w * per_user_normalised(m.score(users).float()) for w, m in zip(self.weights, self.members, strict=True)
        ]
        return torch.stack(parts).sum(dim=0)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {"weights": torch.tensor(self.weights, dtype=torch.float64)}
        for index, member in enumerate(self.members):
            tensors |= {f"m{index}.{key}": value for key, value in member.state_tensors().items()}
        return tensors

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.weights = tuple(float(w) for w in tensors["weights"].tolist())
        for index, member in enumerate(self.members):
            prefix = f"m{index}."
            member.load_state_tensors({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})

    def forget_users(self, users: Sequence[int] | np.ndarray) -> None:
        """Each member forgets the users; the weights hold nothing of anyone."""
        for member in self.members:
            member.forget_users(users)

    def metadata(self) -> dict[str, Any]:
        return {**super().metadata(), "members": [member.metadata() for member in self.members]}

    @classmethod
    def load(cls, directory: Path, *, device: str | torch.device = "cpu") -> Recommender:
        """Members are rebuilt from the metadata first, then every tensor is put back."""
        metadata = json.loads((directory / ARTIFACT_METADATA).read_text())
        model = cls(metadata["params"], device=device, seed=metadata.get("seed", 0))
        model.n_users, model.n_items = int(metadata["n_users"]), int(metadata["n_items"])
        for described in metadata["members"]:
            member = get_algorithm(described["algorithm"])(described["params"], device=device)
            member.n_users, member.n_items = int(described["n_users"]), int(described["n_items"])
            member.load_metadata(described)
            model.members.append(member)
        model.load_state_tensors(load_file(str(directory / ARTIFACT_TENSORS), device=str(model.device)))
        return model


def _fit_record(fitted: BlendFit) -> dict[str, float]:
    """What the run's history keeps of the fit: the weights and the validation NDCG@10 they reached, and the best
    mix on validation with the standard error that kept the blend from it (when it did)."""
    record = {"ndcg@10": fitted.ndcg, **{f"weight_{n}": w for n, w in enumerate(fitted.weights, start=1)}}
    if fitted.best_weights != fitted.weights:
        record |= {"best_mix_ndcg@10": fitted.best_ndcg, "best_mix_standard_error": fitted.standard_error}
        record |= {f"best_mix_weight_{n}": w for n, w in enumerate(fitted.best_weights, start=1)}
    return record
