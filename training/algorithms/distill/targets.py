"""The distillation term: the KL divergence of the student's next-item distribution from its teacher's, and the
teacher's side of it kept for a whole fit (:class:`TeacherTargets`)."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

# The most memory (bytes) a student's fit gives to its teacher's targets, kept for the whole fit rather than computed
# again in every epoch (TeacherTargets); a fit whose targets would take more computes each batch's as it goes.
TEACHER_TARGET_BYTES = 2 * 1024**3


def kl_divergence(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """``KL(softmax(teacher) ‖ softmax(student))`` of each row of two ``(P, n)`` score matrices, ``(P,)``,
    differentiable in ``student``.

    Written as the cross-entropy of ``p = softmax(t)`` against the student's ``s``, ``logsumexp(s) − p·s``, less
    ``p``'s entropy ``H(p) = logsumexp(t) − p·t``: one fused pass over the student's scores (PyTorch's cross-entropy
    with probability targets, about twice as fast forward and backward as a ``logsumexp`` and a row dot product)
    where the textbook form (``F.kl_div`` of two ``log_softmax``) makes several full-size temporaries, in the
    costliest step of a student's training on many items. Its gradient is the same, ``softmax(s) − p``.
    """
    return divergence_to(student, *teacher_distribution(teacher))


@torch.no_grad()
def teacher_distribution(teacher: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's side of :func:`kl_divergence`, which the student's training does not change: for each row of a
    ``(P, n)`` score matrix, ``p = softmax(teacher)`` ``(P, n)`` and its entropy ``(P,)``."""
    target = torch.softmax(teacher, dim=1)
    return target, F.cross_entropy(teacher, target, reduction="none")  # p's entropy: its cross-entropy with itself


def divergence_to(student: torch.Tensor, target: torch.Tensor, entropy: torch.Tensor) -> torch.Tensor:
    """:func:`kl_divergence` from the teacher's side already computed (:func:`teacher_distribution`)."""
    return F.cross_entropy(student, target, reduction="none") - entropy


@dataclasses.dataclass(frozen=True)
class TeacherTargets:
    """The teacher's distribution (:func:`teacher_distribution`) at every position a student's windows score,
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
