"""Knowledge distillation of a sequential teacher run into a small SASRec student (:class:`DistilledSASRec`).

- :mod:`.student`: the student, its hyperparameters and its fit;
- :mod:`.teacher`: the teacher as the student reads it (scores in the student's items, lists, the start map);
- :mod:`.subspace`: the map of the teacher's states and item vectors into the student's dimensions;
- :mod:`.targets`: the KL term and the teacher's targets kept for a fit.
"""

from training.algorithms.distill.student import FIXED_SETTINGS, SERVING, DistilledSASRec, StudentFit
from training.algorithms.distill.subspace import Subspace
from training.algorithms.distill.targets import (
    TEACHER_TARGET_BYTES,
    TeacherTargets,
    divergence_to,
    kl_divergence,
    teacher_distribution,
)
from training.algorithms.distill.teacher import AGREEMENT, TEACHER_LIST, ServingRows, Teacher, TeacherLists

__all__ = [
    "AGREEMENT",
    "FIXED_SETTINGS",
    "SERVING",
    "TEACHER_LIST",
    "TEACHER_TARGET_BYTES",
    "DistilledSASRec",
    "ServingRows",
    "StudentFit",
    "Subspace",
    "Teacher",
    "TeacherLists",
    "TeacherTargets",
    "divergence_to",
    "kl_divergence",
    "teacher_distribution",
]
