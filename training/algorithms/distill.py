"""Knowledge distillation: a small SASRec student learns from a larger teacher run (Hinton et al., 2015).

The student trains on every prefix position of the training sequences, like SASRec, with the loss
``α · T² · KL(softmax(z_teacher / T) ‖ softmax(z_student / T)) + (1 − α) · CE(target)``. The
teacher's scores for the same prefixes come from the teacher itself: a sequential teacher scores
all the positions of a batch of windows in one pass (:meth:`SequentialRecommender.position_scores`,
the same prefixes :meth:`score_sequences` would read), any other teacher through
``score_sequences`` one prefix at a time. Teacher items are mapped into the student's item space
through ``item_map``; items the teacher does not know get a vanishing teacher probability, and
inside the teacher's input they become padding.

A sequential teacher also gives the student its start (``teacher_init``): before training, the
teacher's states at the student's training prefixes and its item vectors are mapped into the
student's ``d`` dimensions so that their products are the best rank-``d`` approximation of the
teacher's scores there (:class:`Subspace`), and the student's item embeddings start as the mapped
item vectors.

With ``serving_weight`` the student also learns the teacher's scores after each user's whole training
history: the input it is scored from when it serves (:meth:`SequentialRecommender.score`), which no
training prefix reaches, since that has no next item to predict. Only the distillation term applies
there; the validation and test items are not read.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from training.algorithms.base import (
    EarlyStopping,
    HeldOut,
    InteractionData,
    ProgressCallback,
    Recommender,
    no_progress,
)
from training.algorithms.params import HyperparameterError, Param
from training.algorithms.registry import register
from training.algorithms.sasrec import SASRec
from training.algorithms.sequential import (
    HEADS,
    PADDING,
    SCORE_CHUNK,
    VERY_LOW_LOGIT,
    ItemEmbedding,
    MixedItemEmbedding,
    SequentialRecommender,
    UserSequences,
    Windows,
    last_positions,
    sequential_params,
    training_windows,
)


@dataclasses.dataclass(frozen=True)
class Subspace:
    """Maps of a teacher's states (``states``, ``(D, k)``) and item vectors (``items``, ``(D, k)``) into ``k``
    dimensions: ``(H @ states) @ (E @ items).T`` is the best rank-``k`` approximation of the scores ``H @ E.T``
    in the least-squares sense, with ``k = min(d, D)``. The item side keeps the teacher's vectors' mean square
    per dimension; the state side takes the singular values."""

    states: torch.Tensor
    items: torch.Tensor

    @classmethod
    def fit(cls, states: torch.Tensor, vectors: torch.Tensor, size: int) -> Subspace:
        """From the teacher's ``states`` ``(P, D)`` and ``vectors`` ``(n, D)`` (float64)."""
        return cls.from_grams(states.T @ states / max(len(states), 1), vectors.T @ vectors / max(len(vectors), 1), size)

    @classmethod
    def from_grams(cls, states: torch.Tensor, items: torch.Tensor, size: int) -> Subspace:
        """From the mean outer products ``(D, D)`` of the teacher's states and of its item vectors (float64)."""
        root_states, unroot_states = _square_roots(states)
        root_items, unroot_items = _square_roots(items)
        left, singular, right = torch.linalg.svd(root_states @ root_items)
        k = min(size, states.shape[1])
        scale = (torch.trace(items) / items.shape[0]).sqrt().clamp_min(1e-12)
        return cls(
            states=unroot_states @ left[:, :k] * (singular[:k] / scale),
            items=unroot_items @ right[:k].T * scale,
        )


def _square_roots(gram: torch.Tensor, floor: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """The symmetric square root of a positive semi-definite matrix and of its inverse, eigenvalues floored at
    ``floor`` times the largest."""
    values, vectors = torch.linalg.eigh(gram)
    values = values.clamp_min(floor * values.max().clamp_min(1e-300))
    return (vectors * values.sqrt()) @ vectors.T, (vectors / values.sqrt()) @ vectors.T


DISTILLATION_PARAMS = (
    Param("temperature", float, 2.0, help="Softmax temperature T of both distributions in the KL term.",
          minimum=0.05, maximum=100.0),
    Param("alpha", float, 0.5, help="Weight of the distillation (KL) term; 1 − alpha weighs the ground truth.",
          minimum=0.0, maximum=1.0),
    Param("teacher_init", bool, True, help="Start the student's item embeddings from the teacher's, mapped into "
          "the student's dimensions so that they keep as much of the teacher's scores as those dimensions can (a "
          "sequential teacher only)."),
    Param("tail_size", int, 0, help="Mixed-dimension item embeddings: the items outside the head (head_items) get "
          "embeddings of this many dimensions, mapped up to embedding_size by one shared projection, which leaves "
          "more of the parameters to the items that are often someone's next (0: every item its full size; "
          "content none only).", minimum=0, maximum=1024),
    Param("head_items", int, 500, help="With tail_size: how many items keep full-size embeddings (those first by "
          "head_by).", minimum=1, maximum=10_000_000),
    Param("head_by", str, "events", help="With tail_size: which items make the head: those with the most training "
          "events, or those most often in the teacher's top 10 after the users' histories (the lists the student "
          "will serve; training items excluded, ties to the most events).", choices=("events", "teacher")),
    Param("select_by", str, "validation", help="The epoch the student keeps: the best by validation NDCG@10, or by "
          "agreement with the teacher (the share of the teacher's top 10 after each user's history that the student's "
          "top 10 holds, training items excluded; reads no held-out rating; early_stopping_patience then counts epochs "
          "without better agreement).", choices=("validation", "teacher")),
    Param("serving_weight", float, 0.0, help="Also match the teacher after each user's whole training history, the "
          "input the student serves from (no true next item there: the distillation term alone), each such position "
          "weighing this many training positions (0: training prefixes only).", minimum=0.0, maximum=1000.0),
)  # fmt: skip

# head_by and select_by "teacher": the length of the teacher's lists that choose the head, and that the student's
# agreement with the teacher is measured on.
TEACHER_LIST = 10
AGREEMENT = f"teacher_agreement@{TEACHER_LIST}"

# A position's target in the student's windows when it has no true next item: the user's latest history, where the
# student learns the teacher's scores alone (serving_weight).
SERVING = -2


# (users, tokens, positions): see DistilledSASRec._serving_rows.
ServingRows = tuple[np.ndarray, np.ndarray, np.ndarray]


def _top_k_items(model: Any, data: InteractionData, users: np.ndarray, k: int) -> torch.Tensor:
    """:func:`~training.evaluation.ranking.top_k_items` (imported when first needed: training.evaluation imports
    the algorithms)."""
    from training.evaluation.ranking import top_k_items

    return top_k_items(model, data, users, k=k)


@dataclasses.dataclass(frozen=True)
class TeacherLists:
    """The teacher's ``k`` best items (training items excluded, best first) after the latest training history of
    each of ``users`` (those with events): ``items`` ``(len(users), k)`` int64."""

    users: np.ndarray
    items: torch.Tensor

    def agreement(self, ours: torch.Tensor) -> float:
        """The mean share of each teacher list that ``ours`` (the same users' lists, as long) also holds."""
        if not len(self.users):
            return 0.0
        shared = (ours[:, :, None] == self.items[:, None, :]).any(dim=2).sum(dim=1)
        return float(shared.double().mean() / self.items.shape[1])


class _TeacherAtHistories:
    """The teacher's scores in a student's items after each user's latest training history, as a model
    :func:`~training.evaluation.ranking.top_k_items` can rank (users without a history are not asked for)."""

    name = "teacher"

    def __init__(
        self, student: DistilledSASRec, n_users: int, users: np.ndarray, tokens: np.ndarray, positions: np.ndarray
    ) -> None:
        self.student, self.tokens, self.positions = student, torch.from_numpy(tokens), torch.from_numpy(positions)
        self.rows = np.full(n_users, -1, dtype=np.int64)
        self.rows[users] = np.arange(len(users))

    def score(self, users: np.ndarray) -> torch.Tensor:
        rows = torch.from_numpy(self.rows[np.asarray(users)])
        if bool((rows < 0).any()):
            raise ValueError("the teacher's lists are for users with a training history")
        return self.student._teacher_logits(self.tokens[rows], self.positions[rows]).cpu()


def softened_divergence(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """``KL(softmax(teacher / T) ‖ softmax(student / T))`` of each row of two ``(P, n)`` score matrices, ``(P,)``,
    differentiable in ``student``.

    Written as the cross-entropy of ``p = softmax(t)`` against the student's ``s``, ``logsumexp(s) − p·s``, less
    ``p``'s entropy ``H(p) = logsumexp(t) − p·t`` (``s``, ``t`` the scores over ``T``): one fused pass over the
    student's scores (PyTorch's cross-entropy with probability targets, about twice as fast forward and backward
    as a ``logsumexp`` and a row dot product) where the textbook form (``F.kl_div`` of two ``log_softmax``) makes
    several full-size temporaries, in the costliest step of a student's training on many items. Its gradient is
    the same, ``(softmax(s) − p) / T``.
    """
    return divergence_to(student, *softened_targets(teacher, temperature), temperature)


@torch.no_grad()
def softened_targets(teacher: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's side of :func:`softened_divergence`, which the student's training does not change: for each
    row of a ``(P, n)`` score matrix, ``p = softmax(teacher / T)`` ``(P, n)`` and its entropy ``(P,)``."""
    if temperature != 1.0:
        teacher = teacher / temperature
    target = torch.softmax(teacher, dim=1)
    return target, F.cross_entropy(teacher, target, reduction="none")  # p's entropy: its cross-entropy with itself


def divergence_to(student: torch.Tensor, target: torch.Tensor, entropy: torch.Tensor, temperature: float):
    """:func:`softened_divergence` from the teacher's side already computed (:func:`softened_targets`)."""
    if temperature != 1.0:
        student = student / temperature
    return F.cross_entropy(student, target, reduction="none") - entropy


# The most memory (bytes) a student's fit gives to its teacher's targets, kept for the whole fit rather than computed
# again in every epoch (TeacherTargets); a fit whose targets would take more computes each batch's as it goes.
TEACHER_TARGET_BYTES = 2 * 1024**3


@dataclasses.dataclass(frozen=True)
class TeacherTargets:
    """The teacher's softened distribution (:func:`softened_targets`) at every position a student's windows score,
    computed once before training: the teacher does not change, so each epoch would compute the same again (its
    forward pass, its scores over every item and their softmax, about a fifth of a student's epoch on thousands of
    items). Window ``w``'s scored positions, first to last, are rows ``starts[w]`` to
    ``starts[w] + counts[w]`` of ``target`` ``(P, n_items)`` and ``entropy`` ``(P,)``."""

    starts: torch.Tensor
    counts: torch.Tensor
    target: torch.Tensor
    entropy: torch.Tensor

    @staticmethod
    def size_in_bytes(positions: int, n_items: int) -> int:
        return positions * (n_items + 1) * torch.float32.itemsize

    def rows(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The targets and entropies of the positions of ``windows`` ``(b,)`` (indexes), window after window."""
        counts = self.counts[windows]
        shift = self.starts[windows] - (torch.cumsum(counts, 0) - counts)  # each window's rows: start - rows before
        index = torch.repeat_interleave(shift, counts) + torch.arange(int(counts.sum()), device=counts.device)
        return self.target[index], self.entropy[index]


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
        self._teacher_identity = False
        # While fitting from a sequential teacher with teacher_init: its maps into our dimensions.
        self._subspace: Subspace | None = None
        # With tail_size: (n_items,) bool, the items with full-size embeddings (set by fit, or by loading).
        self._head: torch.Tensor | None = None
        # While fitting with head_by or select_by "teacher": the teacher's lists after the users' histories.
        self._teacher_lists: TeacherLists | None = None
        # While fitting: each user's latest history (_serving_rows), read by the lists, the init and the windows.
        self._serving: ServingRows | None = None
        # While fitting, where they fit in TEACHER_TARGET_BYTES: the teacher's targets at the training windows.
        self._targets: TeacherTargets | None = None

    def _check_architecture(self, hparams: dict[str, Any]) -> None:
        super()._check_architecture(hparams)
        if hparams["tail_size"] and hparams["tail_size"] >= hparams["embedding_size"]:
            raise HyperparameterError(
                {"tail_size": f"must be below embedding_size ({hparams['embedding_size']}), or 0 for no tail"}
            )
        if hparams["tail_size"] and hparams["content"] != "none":
            raise HyperparameterError({"tail_size": "mixed-dimension embeddings take no content: set content to none"})

    def _item_embedding(self, n_items: int, size: int, feature_size: int) -> ItemEmbedding:
        if self._head is None:
            return super()._item_embedding(n_items, size, feature_size)
        return MixedItemEmbedding(self._head, size, self.hparams["tail_size"])

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        rows = tensors.get("network.items.rows")
        self._head = None if rows is None else rows[1:] < len(tensors["network.items.table"])
        super().load_state_tensors(tensors)

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
        # The same items in the same order: the teacher's scores need no mapping.
        self._teacher_identity = teacher.n_items == len(item_map) and bool((item_map == np.arange(len(item_map))).all())

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

    def _head_order(self, data: InteractionData) -> np.ndarray:
        """Each item's key for :meth:`_head_of` under ``head_by``: its training events, or how many of the
        teacher's lists (:class:`TeacherLists`) it is in, plus its events as a fraction below one, which breaks the
        ties."""
        events = np.bincount(data.items, minlength=data.n_items)
        if self._teacher_lists is None or self.hparams["head_by"] == "events":
            return events
        listed = np.bincount(self._teacher_lists.items.ravel().numpy(), minlength=data.n_items)
        return listed + events / (events.max() + 1)

    @torch.no_grad()
    def _lists_of_teacher(self, data: InteractionData, serving: ServingRows) -> TeacherLists:
        """The teacher's top items after each user's latest training history (the student's serving input)."""
        users, tokens, positions = serving
        at_histories = _TeacherAtHistories(self, data.n_users, users, tokens, positions)
        return TeacherLists(users, _top_k_items(at_histories, data, users, min(TEACHER_LIST, data.n_items)))

    def _early_stopping(self, data: InteractionData, validation: HeldOut | None) -> EarlyStopping:
        """With ``select_by`` "teacher", the kept epoch is the one that agrees best with the teacher's lists;
        validation NDCG@10 is still measured each epoch."""
        if self._teacher_lists is None or self.hparams["select_by"] != "teacher":
            return super()._early_stopping(data, validation)
        lists = self._teacher_lists

        def agreement() -> dict[str, float]:
            return {AGREEMENT: lists.agreement(_top_k_items(self, data, lists.users, lists.items.shape[1]))}

        patience = self.hparams["early_stopping_patience"]
        return EarlyStopping(self, data, validation, patience=patience, measure=agreement, metric=AGREEMENT)

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
        sequences = UserSequences.from_data(data)
        self._serving = self._serving_rows(sequences)
        by_teacher = self.hparams["select_by"] == "teacher" or (
            self.hparams["tail_size"] > 0 and self.hparams["head_by"] == "teacher"
        )
        self._teacher_lists = self._lists_of_teacher(data, self._serving) if by_teacher else None
        self._head = self._head_of(self._head_order(data))
        self._subspace = None
        mapped = isinstance(self.teacher, SequentialRecommender) and bool((self._teacher_items >= 0).any())
        if mapped and self.hparams["teacher_init"]:
            self._subspace = self._teacher_subspace(sequences, self._serving)
        try:
            super().fit(data, progress, validation=validation)
        finally:
            self._subspace = self._teacher_lists = self._serving = self._targets = None

    @torch.no_grad()
    def _teacher_subspace(self, sequences: UserSequences, serving: ServingRows) -> Subspace | None:
        """The maps of the teacher's states and item vectors into our ``d`` dimensions whose product is the best
        rank-``d`` approximation of the teacher's scores (least squares) at the prefixes we train on (``None``
        when there are none)."""
        teacher, size = self.teacher, self.hparams["embedding_size"]
        assert isinstance(teacher, SequentialRecommender)
        inputs, targets, _ = training_windows(sequences, self.hparams["max_length"], self._window_stride())
        trained = targets >= 0
        if self.hparams["serving_weight"]:
            _, tokens, at = serving
            inputs, trained = np.concatenate([inputs, tokens]), np.concatenate([trained, at])
        token_map = torch.cat([torch.zeros(1, dtype=torch.long), self._teacher_items + 1]).to(teacher.device)
        gram, count = None, 0
        for rows, positions in zip(
            torch.from_numpy(inputs).split(SCORE_CHUNK), torch.from_numpy(trained).split(SCORE_CHUNK), strict=True
        ):
            states = teacher.position_states(token_map[rows.to(teacher.device)], positions.to(teacher.device)).double()
            gram = states.T @ states if gram is None else gram + states.T @ states
            count += len(states)
        if not count:
            return None
        known = self._teacher_items >= 0
        vectors = teacher.item_vectors().double()[self._teacher_items[known].to(teacher.device)]
        return Subspace.from_grams(gram.cpu() / count, (vectors.T @ vectors).cpu() / len(vectors), size)

    def _serving_rows(self, sequences: UserSequences) -> ServingRows:
        """Each user's latest history, the tokens it is scored from (:meth:`score`), for the users with events:
        ``(users, tokens, positions)``, ``tokens`` and ``positions`` ``(len(users), max_length)``, ``positions``
        true at each row's last item."""
        users = np.flatnonzero(sequences.lengths() > 0)
        tokens = sequences.last_tokens(self.hparams["max_length"])[users]
        positions = np.zeros(tokens.shape, dtype=bool)
        positions[np.arange(len(tokens)), last_positions(torch.from_numpy(tokens)).numpy()] = True
        return users, tokens, positions

    @torch.no_grad()
    def _start_item_embeddings(self) -> None:
        """The items the teacher knows start from its item vectors mapped into our dimensions (the others, and
        any dimensions beyond the teacher's, keep their fresh initialisation)."""
        if self._subspace is None:
            return
        items = self._network.items
        known = self._teacher_items >= 0
        vectors = self.teacher.item_vectors().double().cpu()[self._teacher_items[known]] @ self._subspace.items
        items.assign(known.to(self.device), vectors.to(self.device))

    def _windows(self, sequences: UserSequences) -> Windows:
        """The training windows, and with ``serving_weight`` one more per user: its latest history, whose last
        position learns the teacher's scores alone. Numbered (``ids``), with the teacher's targets at them kept
        where they fit in ``TEACHER_TARGET_BYTES`` (:class:`TeacherTargets`)."""
        windows = super()._windows(sequences)
        if self.hparams["serving_weight"]:
            assert self._serving is not None  # set by fit for its duration, from the same training data
            users, tokens, positions = (torch.from_numpy(array).to(self.device) for array in self._serving)
            targets = torch.where(positions, SERVING, -1)
            offsets = None if windows.offsets is None else torch.cat([windows.offsets, self.history_offsets[users]])
            folds = None if windows.folds is None else torch.cat([windows.folds, self._user_folds[users]])
            windows = Windows(
                torch.cat([windows.inputs, tokens]), torch.cat([windows.target_events, targets]), offsets, folds
            )
        windows = dataclasses.replace(windows, ids=torch.arange(len(windows), device=self.device))
        self._targets = self._teacher_targets(windows)
        return windows

    @torch.no_grad()
    def _teacher_targets(self, windows: Windows) -> TeacherTargets | None:
        """The teacher's targets at every position the windows score, or ``None`` where they would take more than
        ``TEACHER_TARGET_BYTES``."""
        scored = _scored(windows.target_events)
        counts = scored.sum(1)
        total = int(counts.sum())
        if TeacherTargets.size_in_bytes(total, self.n_items) > TEACHER_TARGET_BYTES:
            return None
        target = torch.empty((total, self.n_items), device=self.device)
        entropy = torch.empty(total, device=self.device)
        row = 0
        for chunk in windows.ids.split(self.hparams["batch_size"]):  # a training batch's worth at a time
            part, part_entropy = self._batch_targets(windows.inputs[chunk], scored[chunk])
            target[row : row + len(part)], entropy[row : row + len(part)] = part, part_entropy
            row += len(part)
        return TeacherTargets(torch.cumsum(counts, 0) - counts, counts, target, entropy)

    def _batch_targets(self, inputs: torch.Tensor, scored: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The teacher's targets and their entropies (:func:`softened_targets`) at the ``scored`` positions of the
        windows ``inputs``."""
        teacher = self._training_logits(self._teacher_logits(inputs, scored))
        return softened_targets(teacher, self.hparams["temperature"])

    def _batch_loss(self, batch: Windows) -> tuple[torch.Tensor, int]:
        trained = batch.target_events >= 0
        scored = _scored(batch.target_events)
        items = self._item_tables()
        hidden = self._hidden(batch.inputs, items.table, offsets=batch.offsets, folds=batch.folds)[scored]
        student = self._training_logits(self._network.logits(hidden, items.table, kept=items.kept).float())
        temperature, alpha = self.hparams["temperature"], self.hparams["alpha"]
        if self._targets is not None:  # kept for the fit: our _windows numbered the batch's windows (ids)
            target, entropy = self._targets.rows(batch.ids)
        else:
            target, entropy = self._batch_targets(batch.inputs, scored)
        divergence = divergence_to(student, target, entropy, temperature)
        with_truth = trained[scored]
        weights = torch.where(with_truth, 1.0, self.hparams["serving_weight"])
        loss = alpha * temperature**2 * (weights * divergence).sum() / weights.sum().clamp_min(1e-12)
        if bool(with_truth.any()):
            targets = self._items_by_event[batch.target_events[trained]]
            if alpha < 1:  # at alpha 1 the ground truth weighs nothing: not computed
                loss = loss + (1 - alpha) * F.cross_entropy(student[with_truth], targets)
            loss = loss + self._content_only_loss(hidden[with_truth], targets, items.content)
        return loss, len(divergence)

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
        if self._teacher_identity:
            return logits
        known = item_map >= 0
        mapped = torch.full((len(logits), len(item_map)), VERY_LOW_LOGIT, device=inputs.device)
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


def _scored(target_events: torch.Tensor) -> torch.Tensor:
    """The positions of windows ``(w, L)`` a student learns at: those with a next item and, with ``serving_weight``,
    each user's latest history (``SERVING``)."""
    return (target_events >= 0) | (target_events == SERVING)
