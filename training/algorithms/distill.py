"""Knowledge distillation: a small SASRec student learns from a larger teacher run (Hinton et al., 2015).

The student trains on every prefix position of the training sequences, like SASRec, with the loss
``α · T² · KL(softmax(z_teacher / T) ‖ softmax(z_student / T)) + (1 − α) · CE(target)``. The
teacher's scores for the same prefixes come from the teacher itself: a sequential teacher scores
all the positions of a batch of windows in one pass (:meth:`SequentialRecommender.position_scores`,
the same prefixes :meth:`score_sequences` would read), any other teacher through
``score_sequences`` one prefix at a time. Teacher items are mapped into the student's item space
through ``item_map``; items the teacher does not know get a vanishing teacher probability, and
inside the teacher's input they become padding.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from training.algorithms.base import HeldOut, InteractionData, ProgressCallback, Recommender, no_progress
from training.algorithms.params import Param
from training.algorithms.registry import register
from training.algorithms.sasrec import SASRec
from training.algorithms.sequential import (
    HEADS,
    PADDING,
    VERY_LOW_LOGIT,
    SequentialRecommender,
    Windows,
    sequential_params,
)

DISTILLATION_PARAMS = (
    Param("temperature", float, 2.0, help="Softmax temperature T of both distributions in the KL term.",
          minimum=0.05, maximum=100.0),
    Param("alpha", float, 0.5, help="Weight of the distillation (KL) term; 1 − alpha weighs the ground truth.",
          minimum=0.0, maximum=1.0),
    Param("teacher_init", bool, True, help="Start the student's item embeddings from the teacher's, projected "
          "onto their top principal directions (a sequential teacher only)."),
)  # fmt: skip


@register
class DistilledSASRec(SASRec):
    name = "distill"
    label = "Distilled SASRec (student)"
    description = (
        "A small SASRec (32 dimensions, 1 layer, learning rate 3e-3 by default) trained to match a teacher run's "
        "next-item distribution (temperature-softened KL) as well as the true next items. Needs a teacher run as "
        "its parent."
    )
    # A student a quarter of the teacher's size learns faster than the teacher did: its default step is 3e-3.
    params = sequential_params(
        embedding_size=32, layers=1, learning_rate=3e-3, architecture=(HEADS,), extra=DISTILLATION_PARAMS
    )
    needs_teacher: ClassVar[bool] = True
    supports_initialize_from = False

    def __init__(self, params: Any = None, *, device: str | torch.device = "cpu", seed: int = 0) -> None:
        super().__init__(params, device=device, seed=seed)
        self.teacher: Recommender | None = None
        self._teacher_items = torch.zeros(0, dtype=torch.long)

    def attach_teacher(self, teacher: Recommender, item_map: np.ndarray) -> None:
        """Learn from ``teacher``; ``item_map`` ``(n_items,)`` int64 is its index of each of our items, or -1."""
        item_map = np.asarray(item_map, dtype=np.int64)
        if item_map.ndim != 1 or (len(item_map) and (item_map.max() >= teacher.n_items or item_map.min() < -1)):
            raise ValueError(f"item_map must be a 1-D array of teacher item indexes (below {teacher.n_items}) or -1")
        if isinstance(teacher, SequentialRecommender):
            if teacher.hparams["max_length"] < self.hparams["max_length"]:
                raise ValueError(
                    f"the teacher reads {teacher.hparams['max_length']} items, fewer than the student's max_length "
                    f"{self.hparams['max_length']}: lower the student's max_length"
                )
        elif not callable(getattr(teacher, "score_sequences", None)):
            raise ValueError(f"a {teacher.name} model cannot be a teacher: it cannot score item sequences")
        self.teacher = teacher
        self._teacher_items = torch.from_numpy(item_map)

    def initialize_from(self, parent: Recommender, item_map: np.ndarray) -> None:
        raise NotImplementedError(f"{self.name} learns from a teacher (attach_teacher), it does not start from one")

    def fit(
        self, data: InteractionData, progress: ProgressCallback = no_progress, *, validation: HeldOut | None = None
    ) -> None:
        if self.teacher is None:
            raise ValueError("distill learns from a teacher: call attach_teacher(teacher, item_map) before fit")
        if len(self._teacher_items) != data.n_items:
            raise ValueError(
                f"the teacher's item_map covers {len(self._teacher_items)} items, the data has {data.n_items}"
            )
        super().fit(data, progress, validation=validation)

    def _start_item_embeddings(self) -> None:
        if self.hparams["teacher_init"] and isinstance(self.teacher, SequentialRecommender):
            self._start_from_teacher_items(self.teacher.item_vectors())

    @torch.no_grad()
    def _start_from_teacher_items(self, vectors: torch.Tensor) -> None:
        """Set the item embeddings of the items the teacher knows to its ``vectors`` ``(teacher items, D)``
        projected onto their top ``d`` right singular directions (the rank-``d`` subspace that keeps their dot
        products best); the other items, and the dimensions beyond ``D``, keep their fresh initialisation."""
        table = self._network.items.table
        known = (self._teacher_items >= 0).to(table.device)
        if not bool(known.any()):
            return
        mine = vectors.to(table.device, torch.float32)[self._teacher_items.to(table.device)[known]]
        size = min(table.shape[1], mine.shape[1])
        _, _, right = torch.linalg.svd(mine.double(), full_matrices=False)
        table[1:][known, :size] = (mine.double() @ right[:size].T).to(table.dtype)

    def _batch_loss(self, batch: Windows) -> tuple[torch.Tensor, int]:
        trained = batch.target_events >= 0
        items = self._item_tables()
        hidden = self._hidden(batch.inputs, items.table, offsets=batch.offsets, folds=batch.folds)[trained]
        student = self._training_logits(self._network.logits(hidden, items.table, kept=items.kept).float())
        targets = self._items_by_event[batch.target_events[trained]]
        temperature, alpha = self.hparams["temperature"], self.hparams["alpha"]
        teacher = self._training_logits(self._teacher_logits(batch.inputs, trained))
        divergence = F.kl_div(
            F.log_softmax(student / temperature, dim=1),
            F.log_softmax(teacher / temperature, dim=1),
            log_target=True,
            reduction="batchmean",
        )
        loss = alpha * temperature**2 * divergence + (1 - alpha) * F.cross_entropy(student, targets)
        return loss + self._content_only_loss(hidden, targets, items.content), len(targets)

    def _teacher_logits(self, inputs: torch.Tensor, trained: torch.Tensor) -> torch.Tensor:
        """The teacher's scores ``(trained.sum(), n_items)`` for the student's trained prefixes, in student items."""
        teacher = self.teacher
        assert teacher is not None
        item_map = self._teacher_items.to(inputs.device)
        if isinstance(teacher, SequentialRecommender):
            token_map = torch.cat([torch.zeros(1, dtype=torch.long, device=inputs.device), item_map + 1])
            logits = teacher.position_scores(token_map[inputs].to(teacher.device), trained.to(teacher.device))
        else:
            logits = teacher.score_sequences(self._prefixes(inputs, trained, item_map))
        logits = logits.to(inputs.device).float()
        known = item_map >= 0
        mapped = torch.full((len(logits), self.n_items), VERY_LOW_LOGIT, device=inputs.device)
        mapped[:, known] = logits[:, item_map[known]]
        return mapped

    @staticmethod
    def _prefixes(inputs: torch.Tensor, trained: torch.Tensor, item_map: torch.Tensor) -> list[np.ndarray]:
        """Each trained position's prefix as teacher item indexes (items unknown to the teacher left out)."""
        teacher_items = torch.where(inputs != PADDING, item_map[(inputs - 1).clamp(min=0)], -1).cpu().numpy()
        rows, columns = (index.cpu().numpy() for index in trained.nonzero(as_tuple=True))
        return [
            teacher_items[row, : column + 1][teacher_items[row, : column + 1] >= 0]
            for row, column in zip(rows, columns, strict=True)
        ]
