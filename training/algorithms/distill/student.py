"""The distilled student: a small SASRec that learns a teacher run's next-item distribution (Hinton et al., 2015).

The student trains on every prefix position of the training sequences, like SASRec, with the loss
``KL(softmax(z_teacher) ‖ softmax(z_student))`` alone (temperature 1, no ground-truth term: the benchmarks' students
that keep 95% of their teachers learn the teacher only). The teacher, a sequential run, scores all the positions of
a batch of windows in one pass (:meth:`SequentialRecommender.position_scores`). Teacher items are mapped into the
student's item space through ``item_map`` (:class:`Teacher`).

Before training, the teacher's states at the student's training prefixes and its item vectors are mapped into the
student's ``d`` dimensions so that their products are the best rank-``d`` approximation of the teacher's scores
there (:class:`Subspace`), and the student's item embeddings start as the mapped item vectors.

With ``serving_weight`` the student also learns the teacher's scores after each user's whole training history: the
input it is scored from when it serves (:meth:`SequentialRecommender.score`), which no training prefix reaches, since
that has no next item to predict. The validation and test items are not read. With ``tail_size``, the items outside
the ``head_items`` most often in the teacher's lists there get narrow embeddings (:class:`MixedItemEmbedding`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import torch

from training.algorithms.base import EarlyStopping, ProgressCallback, Recommender, no_progress
from training.algorithms.distill import targets as teacher_targets
from training.algorithms.distill.subspace import Subspace
from training.algorithms.distill.targets import TeacherTargets, divergence_to, teacher_distribution
from training.algorithms.distill.teacher import AGREEMENT, ServingRows, Teacher, TeacherLists, top_k_items
from training.algorithms.params import HyperparameterError, Param
from training.algorithms.registry import register
from training.algorithms.sasrec import SASRec
from training.algorithms.sequential import (
    CUDA_OPTIONS,
    HEADS,
    TRAINING_PASSES,
    ItemEmbedding,
    MixedItemEmbedding,
    SequenceNetwork,
    SequentialRecommender,
    TransformerEncoder,
    UserSequences,
    Windows,
    training_windows,
)
from training.interactions import HeldOut, InteractionData

# A position's target in the student's windows when it has no true next item: the user's latest history, where the
# student learns the teacher's scores alone (serving_weight).
SERVING = -2

# Settings every student trains with, no longer hyperparameters: each is the published students' setting and the
# better one where the benchmarks compared them (docs/benchmarks.md).
FIXED_SETTINGS: dict[str, Any] = {"dropout": 0.0, "learning_rate_schedule": "cosine"}


def _params() -> tuple[Param, ...]:
    """The student's hyperparameters: its size, its two distillation choices and the training loop's."""
    return (
        Param("embedding_size", int, 32, help="Dimensions of item vectors and states.", minimum=4, maximum=1024),
        Param("layers", int, 2, help="Stacked encoder layers.", minimum=1, maximum=12),
        HEADS,
        Param("max_length", int, 50, help="Most recent items the student reads (at most the teacher's).", minimum=2,
              maximum=1000),
        Param("tail_size", int, 0, help="Mixed-dimension item embeddings: the items outside the head (head_items) get "
              "embeddings of this many dimensions, mapped up to embedding_size by one shared projection, which leaves "
              "more of the parameters to the items the teacher recommends (0: every item its full size).", minimum=0,
              maximum=1024),
        Param("head_items", int, 1600, help="With tail_size: how many items keep full-size embeddings (those most "
              "often in the teacher's top 10 after the users' histories; ties to the most events).", minimum=1,
              maximum=10_000_000),
        Param("serving_weight", float, 100.0, help="Also match the teacher after each user's whole training history, "
              "the input the student serves from, each such position weighing this many training positions (0: "
              "training prefixes only).", minimum=0.0, maximum=1000.0),
        Param("select_by", str, "teacher", help="The epoch the student keeps: the one whose top 10 after each user's "
              "history holds most of the teacher's (training items excluded; reads no held-out rating), or the best "
              "by validation NDCG@10; early_stopping_patience counts epochs without a better one.",
              choices=("teacher", "validation")),
        Param("learning_rate", float, 6e-3, help="AdamW step size; it falls to 0 along half a cosine over the epochs.",
              minimum=1e-6, maximum=1.0),
        Param("weight_decay", float, 0.0, help="AdamW's decoupled weight decay.", minimum=0.0, maximum=1.0),
        *TRAINING_PASSES,
        Param("early_stopping_patience", int, 10, help="Epochs without a better kept-epoch measure before stopping.",
              minimum=1, maximum=1000),
        *CUDA_OPTIONS,
    )  # fmt: skip


@dataclasses.dataclass(frozen=True)
class StudentFit:
    """What one fit of a student learns from, computed before its first epoch and dropped after its last."""

    teacher: Teacher
    windows: Windows
    # The teacher's targets at the windows' scored positions, where they fit in TEACHER_TARGET_BYTES.
    targets: TeacherTargets | None


@register
class DistilledSASRec(SASRec):
    name = "distill"
    label = "Distilled SASRec (student)"
    description = (
        "A small SASRec (32 dimensions, 2 layers by default) trained to match a teacher run's next-item distribution, "
        "including after each user's whole history, from where it serves. Needs a sequential teacher run as its "
        "parent."
    )
    params = _params()
    needs_teacher: ClassVar[bool] = True
    supports_initialize_from = False

    def __init__(self, params: Any = None, *, device: str | torch.device = "cpu", seed: int = 0) -> None:
        super().__init__(params, device=device, seed=seed)
        self.teacher: Teacher | None = None
        # With tail_size: (n_items,) bool, the items with full-size embeddings (set by fit, or by loading).
        self._head: torch.Tensor | None = None

    def _build_network(self, n_items: int, feature_size: int) -> SequenceNetwork:
        size = self.hparams["embedding_size"]
        encoder = TransformerEncoder(
            size, self.hparams["layers"], self.hparams["heads"], FIXED_SETTINGS["dropout"], self.hparams["max_length"]
        )
        return SequenceNetwork(self._item_embedding(n_items, size, feature_size), encoder)

    def _learning_rate_schedule(self) -> str:
        return FIXED_SETTINGS["learning_rate_schedule"]

    def _check_architecture(self, hparams: dict[str, Any]) -> None:
        super()._check_architecture(hparams)
        if hparams["tail_size"] and hparams["tail_size"] >= hparams["embedding_size"]:
            raise HyperparameterError(
                {"tail_size": f"must be below embedding_size ({hparams['embedding_size']}), or 0 for no tail"}
            )

    def _item_embedding(self, n_items: int, size: int, feature_size: int) -> ItemEmbedding:
        if self._head is None:
            return super()._item_embedding(n_items, size, feature_size)
        return MixedItemEmbedding(self._head, size, self.hparams["tail_size"])

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        rows = tensors.get("network.items.rows")
        self._head = None if rows is None else rows[1:] < len(tensors["network.items.table"])
        super().load_state_tensors(tensors)

    @classmethod
    def can_learn_from(cls, algorithm: type[Recommender]) -> bool:
        """Whether a run of ``algorithm`` can be a student's teacher: it must be sequential (it scores the student's
        windows position by position)."""
        return issubclass(algorithm, SequentialRecommender)

    def attach_teacher(self, teacher: Recommender, item_map: np.ndarray) -> None:
        """Learn from ``teacher``, a fitted sequential model; ``item_map`` ``(n_items,)`` int64 is its index of each
        of our items, or -1."""
        if not isinstance(teacher, SequentialRecommender):
            raise ValueError(f"a {teacher.name} model cannot be a teacher: the student learns from a sequential run")
        if teacher.hparams["max_length"] < self.hparams["max_length"]:
            raise ValueError(
                f"the teacher reads {teacher.hparams['max_length']} items, fewer than the student's max_length "
                f"{self.hparams['max_length']}: lower the student's max_length"
            )
        self.teacher = Teacher(teacher, item_map)

    def parameter_count_for(self, n_items: int) -> int:
        """The parameters this student will have once fitted on ``n_items`` items (to size it before fitting)."""
        fitted_head = self._head
        self._head = self._head_of(np.zeros(n_items, dtype=np.int64))  # which items does not change the count
        try:
            return sum(weight.numel() for weight in self._build_network(n_items, 0).parameters())
        finally:
            self._head = fitted_head

    def _head_of(self, keys: np.ndarray) -> torch.Tensor | None:
        """``(n_items,)`` bool: the ``head_items`` items with the highest ``keys`` (ties: the lower index), or
        ``None`` when every item keeps its full size (no tail, or no more items than the head)."""
        if not self.hparams["tail_size"] or len(keys) <= self.hparams["head_items"]:
            return None
        order = torch.sort(torch.from_numpy(keys), descending=True, stable=True).indices
        head = torch.zeros(len(keys), dtype=torch.bool)
        head[order[: self.hparams["head_items"]]] = True
        return head

    def initialize_from(self, parent: Recommender, item_map: np.ndarray) -> None:
        raise NotImplementedError(f"{self.name} learns from a teacher (attach_teacher), it does not start from one")

    # -- fitting

    def fit(
        self, data: InteractionData, progress: ProgressCallback = no_progress, *, validation: HeldOut | None = None
    ) -> None:
        teacher = self._checked_teacher(data)
        sequences = UserSequences.from_data(data)
        serving = ServingRows.of(sequences, self.hparams["max_length"])
        lists = teacher.lists(data, serving) if self._needs_lists() else None
        self._head = self._head_of(lists.head_keys(data)) if lists is not None else None
        windows = self._student_windows(sequences, serving)
        subspace = teacher.subspace(
            windows.inputs.numpy(), _scored(windows.target_events).numpy(), self.hparams["embedding_size"]
        )
        with self._seeded():
            self._prepare(data, None)
            if subspace is not None:
                self._start_from_teacher(teacher, subspace)
            self._remember_histories(data, sequences)
            windows = Windows(windows.inputs.to(self.device), windows.target_events.to(self.device))
            windows = dataclasses.replace(windows, ids=torch.arange(len(windows), device=self.device))
            state = StudentFit(teacher, windows, self._teacher_targets(teacher, windows))
            stopper = self._stopping(data, validation, lists)
            self._train(state.windows, stopper, progress, lambda batch: self._distillation_loss(state, batch))
        self._network.eval()

    def _checked_teacher(self, data: InteractionData) -> Teacher:
        if self.teacher is None:
            raise ValueError("distill learns from a teacher: call attach_teacher(teacher, item_map) before fit")
        if len(self.teacher) != data.n_items:
            raise ValueError(f"the teacher's item_map covers {len(self.teacher)} items, the data has {data.n_items}")
        return self.teacher

    def _needs_lists(self) -> bool:
        return self.hparams["select_by"] == "teacher" or self.hparams["tail_size"] > 0

    def _stopping(self, data: InteractionData, validation: HeldOut | None, lists: TeacherLists | None) -> EarlyStopping:
        """With ``select_by`` "teacher", the kept epoch is the one that agrees best with the teacher's lists;
        validation NDCG@10 is still measured each epoch."""
        if lists is None or self.hparams["select_by"] != "teacher":
            return self._early_stopping(data, validation)

        def agreement() -> dict[str, float]:
            return {AGREEMENT: lists.agreement(top_k_items(self, data, lists.users, lists.items.shape[1]))}

        patience = self.hparams["early_stopping_patience"]
        return EarlyStopping(self, data, validation, patience=patience, measure=agreement, metric=AGREEMENT)

    def _student_windows(self, sequences: UserSequences, serving: ServingRows) -> Windows:
        """The training windows (on the CPU), and with ``serving_weight`` one more per user: its latest history,
        whose last position learns the teacher's scores alone."""
        inputs, targets, _ = training_windows(sequences, self.hparams["max_length"], self._window_stride())
        if self.hparams["serving_weight"]:
            inputs = np.concatenate([inputs, serving.tokens])
            targets = np.concatenate([targets, np.where(serving.positions, SERVING, -1)])
        return Windows(torch.from_numpy(inputs), torch.from_numpy(targets))

    @torch.no_grad()
    def _start_from_teacher(self, teacher: Teacher, subspace: Subspace) -> None:
        """The items the teacher knows start from its item vectors mapped into our dimensions (the others, and
        any dimensions beyond the teacher's, keep their fresh initialisation)."""
        known = teacher.item_map >= 0
        vectors = teacher.known_item_vectors() @ subspace.items
        self._network.items.assign(known.to(self.device), vectors.to(self.device))

    @torch.no_grad()
    def _teacher_targets(self, teacher: Teacher, windows: Windows) -> TeacherTargets | None:
        """The teacher's targets at every position the windows score, or ``None`` where they would take more than
        ``TEACHER_TARGET_BYTES``."""
        scored = _scored(windows.target_events)
        counts = scored.sum(1)
        total = int(counts.sum())
        if TeacherTargets.size_in_bytes(total, self.n_items) > teacher_targets.TEACHER_TARGET_BYTES:
            return None
        target = torch.empty((total, self.n_items), device=self.device)
        entropy = torch.empty(total, device=self.device)
        row = 0
        for chunk in torch.arange(len(windows)).split(self.hparams["batch_size"]):  # a training batch at a time
            part, part_entropy = self._batch_targets(teacher, windows.inputs[chunk], scored[chunk])
            target[row : row + len(part)], entropy[row : row + len(part)] = part, part_entropy
            row += len(part)
        return TeacherTargets(torch.cumsum(counts, 0) - counts, counts, target, entropy)

    def _batch_targets(
        self, teacher: Teacher, inputs: torch.Tensor, scored: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The teacher's distribution and its entropies at the ``scored`` positions of the windows ``inputs``."""
        return teacher_distribution(self._training_logits(teacher.logits(inputs, scored)))

    def _distillation_loss(self, state: StudentFit, batch: Windows) -> tuple[torch.Tensor, int]:
        """The KL term over the batch's scored positions, a latest history weighing ``serving_weight`` of a training
        prefix; and their number."""
        scored = _scored(batch.target_events)
        table = self._network.items.weight()
        hidden = self._hidden(batch, table)[scored]
        student = self._training_logits(self._network.logits(hidden, table).float())
        if state.targets is not None and batch.ids is not None:
            target, entropy = state.targets.rows(batch.ids)
        else:
            target, entropy = self._batch_targets(state.teacher, batch.inputs, scored)
        divergence = divergence_to(student, target, entropy)
        weights = torch.where(batch.target_events[scored] >= 0, 1.0, self.hparams["serving_weight"])
        return (weights * divergence).sum() / weights.sum().clamp_min(1e-12), len(divergence)


def _scored(target_events: torch.Tensor) -> torch.Tensor:
    """The positions of windows ``(w, L)`` a student learns at: those with a next item and, with ``serving_weight``,
    each user's latest history (``SERVING``)."""
    return (target_events >= 0) | (target_events == SERVING)
