"""A teacher run as its student reads it: its scores at the student's prefixes in the student's items, its lists
after the users' histories, and the map of its states and item vectors into the student's dimensions."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np
import torch

from training.algorithms.distill.subspace import Subspace
from training.algorithms.sequential import (
    SCORE_CHUNK,
    VERY_LOW_LOGIT,
    SequentialRecommender,
    UserSequences,
    checked_item_map,
    last_positions,
)
from training.interactions import InteractionData

# The length of the teacher's lists that choose the student's head items and that its agreement is measured on.
TEACHER_LIST = 10
AGREEMENT = f"teacher_agreement@{TEACHER_LIST}"


def top_k_items(model: Any, data: InteractionData, users: np.ndarray, k: int) -> torch.Tensor:
    """:func:`~training.evaluation.ranking.top_k_items` (imported when first needed: training.evaluation imports
    the algorithms)."""
    from training.evaluation.ranking import top_k_items

    return top_k_items(model, data, users, k=k)


class ServingRows(NamedTuple):
    """Each user's latest history, the tokens a model serves from (:meth:`SequentialRecommender.score`), for the
    users with events: ``users`` ``(u,)``, ``tokens`` and ``positions`` ``(u, max_length)``, ``positions`` true at
    each row's last item."""

    users: np.ndarray
    tokens: np.ndarray
    positions: np.ndarray

    @classmethod
    def of(cls, sequences: UserSequences, max_length: int) -> ServingRows:
        users = np.flatnonzero(sequences.lengths() > 0)
        tokens = sequences.last_tokens(max_length)[users]
        positions = np.zeros(tokens.shape, dtype=bool)
        positions[np.arange(len(tokens)), last_positions(torch.from_numpy(tokens)).numpy()] = True
        return cls(users, tokens, positions)


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

    def head_keys(self, data: InteractionData) -> np.ndarray:
        """Each item's key for choosing the student's full-size items: how many of the lists it is in, plus its
        training events as a fraction below one, which breaks the ties."""
        events = np.bincount(data.items, minlength=data.n_items)
        listed = np.bincount(self.items.ravel().numpy(), minlength=data.n_items)
        return listed + events / (events.max(initial=0) + 1)


class Teacher:
    """A sequential teacher and ``item_map`` ``(n_items,)`` int64, its index of each of the student's items or -1.
    Items the teacher does not know get a vanishing teacher probability, and inside its input they become padding."""

    def __init__(self, model: SequentialRecommender, item_map: np.ndarray) -> None:
        self.model = model
        self.item_map = torch.from_numpy(checked_item_map(item_map, model.n_items, role="teacher"))
        # The same items in the same order: the teacher's scores need no mapping.
        self.identity = model.n_items == len(item_map) and bool(torch.equal(self.item_map, torch.arange(len(item_map))))

    def __len__(self) -> int:
        return len(self.item_map)

    def _tokens(self, inputs: torch.Tensor) -> torch.Tensor:
        """The student's ``inputs`` tokens as the teacher's, on the teacher's device."""
        token_map = torch.cat([torch.zeros(1, dtype=torch.long), self.item_map + 1]).to(inputs.device)
        return token_map[inputs].to(self.model.device)

    @torch.no_grad()
    def logits(self, inputs: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """The teacher's scores ``(positions.sum(), n_items)`` at the ``positions`` of the student's windows
        ``inputs``, in the student's items, on the inputs' device."""
        scores = self.model.position_scores(self._tokens(inputs), positions.to(self.model.device))
        scores = scores.to(inputs.device).float()
        if self.identity:
            return scores
        item_map = self.item_map.to(inputs.device)
        known = item_map >= 0
        mapped = torch.full((len(scores), len(item_map)), VERY_LOW_LOGIT, device=inputs.device)
        mapped[:, known] = scores[:, item_map[known]]
        return mapped

    @torch.no_grad()
    def lists(self, data: InteractionData, serving: ServingRows) -> TeacherLists:
        """The teacher's top items after each user's latest training history (the student's serving input)."""
        at_histories = _TeacherAtHistories(self, data.n_users, serving)
        return TeacherLists(
            serving.users, top_k_items(at_histories, data, serving.users, min(TEACHER_LIST, data.n_items))
        )

    @torch.no_grad()
    def subspace(self, inputs: np.ndarray, trained: np.ndarray, size: int) -> Subspace | None:
        """The maps of the teacher's states and item vectors into ``size`` dimensions whose product is the best
        rank-``size`` approximation of its scores (least squares) at the ``trained`` positions of the student's
        windows ``inputs``; ``None`` when there are none, or no item the teacher knows."""
        known = self.item_map >= 0
        gram, count = None, 0
        for rows, positions in zip(
            torch.from_numpy(inputs).split(SCORE_CHUNK), torch.from_numpy(trained).split(SCORE_CHUNK), strict=True
        ):
            states = self.model.position_states(self._tokens(rows), positions.to(self.model.device)).double()
            gram = states.T @ states if gram is None else gram + states.T @ states
            count += len(states)
        if gram is None or not count or not bool(known.any()):
            return None
        vectors = self.known_item_vectors()
        return Subspace.from_grams(gram.cpu() / count, (vectors.T @ vectors) / len(vectors), size)

    def known_item_vectors(self) -> torch.Tensor:
        """``(known items, D)`` float64 on the CPU: the teacher's item vectors of the student's items it knows."""
        return self.model.item_vectors().double().cpu()[self.item_map[self.item_map >= 0]]


class _TeacherAtHistories:
    """The teacher's scores in a student's items after each user's latest training history, as a model
    :func:`~training.evaluation.ranking.top_k_items` can rank (users without a history are not asked for)."""

    name = "teacher"

    def __init__(self, teacher: Teacher, n_users: int, serving: ServingRows) -> None:
        self.teacher = teacher
        self.tokens, self.positions = torch.from_numpy(serving.tokens), torch.from_numpy(serving.positions)
        self.rows = np.full(n_users, -1, dtype=np.int64)
        self.rows[serving.users] = np.arange(len(serving.users))

    def score(self, users: np.ndarray) -> torch.Tensor:
        rows = torch.from_numpy(self.rows[np.asarray(users)])
        if bool((rows < 0).any()):
            raise ValueError("the teacher's lists are for users with a training history")
        return self.teacher.logits(self.tokens[rows], self.positions[rows]).cpu()
