"""Which algorithms can start from, or learn from, which parent run: the rule the models apply when they
load a parent, checked when a run is queued so that an impossible pairing is a 400, never a failed job."""

from __future__ import annotations

from training.algorithms.registry import algorithm_names, get_algorithm
from training.algorithms.sequential import SequentialRecommender


def parent_algorithms(*, algorithm: str) -> list[str]:
    """The algorithms whose runs ``algorithm`` can fine-tune from or distil, by name."""
    return [name for name in algorithm_names() if _can_learn_from(algorithm, name)]


def parent_problem(*, algorithm: str, parent_algorithm: str) -> str | None:
    """Why ``algorithm`` cannot start from (or learn from) a ``parent_algorithm`` run, or None when it can."""
    child = get_algorithm(algorithm)
    if not child.needs_teacher and not child.supports_initialize_from:
        return f"{algorithm} cannot start from a parent run"
    if _can_learn_from(algorithm, parent_algorithm):
        return None
    verb = "learns from a teacher of" if child.needs_teacher else "fine-tunes only from"
    return f"{algorithm} {verb} {', '.join(parent_algorithms(algorithm=algorithm))}; not from {parent_algorithm}"


def _can_learn_from(algorithm: str, parent_algorithm: str) -> bool:
    child, parent = get_algorithm(algorithm), get_algorithm(parent_algorithm)
    if not issubclass(parent, SequentialRecommender):
        return False  # teachers score training windows, and fine-tuning copies a sequence network's weights
    if child.needs_teacher:
        return True
    return (
        child.supports_initialize_from
        and issubclass(child, SequentialRecommender)
        and parent.encoder_class is child.encoder_class
    )
