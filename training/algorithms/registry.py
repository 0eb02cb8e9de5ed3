"""The one algorithm registry: scenario validation and training both look algorithms up here.

Importing this module imports its package first, and ``training/algorithms/__init__.py`` imports every
built-in algorithm, whose ``@register`` fills the registry: so the registry never imports an algorithm
itself (they import it), and no import cycle runs through it.
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from training.algorithms.params import HyperparameterError

if TYPE_CHECKING:
    from training.algorithms.base import Recommender

_REGISTRY: dict[str, type["Recommender"]] = {}

R = TypeVar("R", bound=type["Recommender"])


class UnknownAlgorithm(KeyError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)

    def __str__(self) -> str:
        return f"unknown algorithm {self.name!r} (known: {', '.join(algorithm_names())})"


def register(cls: R) -> R:
    """Class decorator: make an algorithm available under its ``name``."""
    name = cls.name
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"algorithm {name!r} registered twice")
    _REGISTRY[name] = cls
    return cls


def get_algorithm(name: str) -> type["Recommender"]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownAlgorithm(name) from None


def algorithm_names() -> list[str]:
    return sorted(_REGISTRY)


def model_names() -> list[str]:
    """The algorithms that are models (fitted and scored), without those that choose among runs (``auto``)."""
    return [name for name in algorithm_names() if not _REGISTRY[name].chooses_model]


def algorithm_fits_objective(name: str, *, ratings: bool) -> bool:
    """Whether ``name`` may model a scenario under the rating objective (``ratings``) or under the ranking one.

    A model that predicts ratings fits the rating objective only (under the ranking one it would learn the kinds'
    weights as ratings), any other model the ranking objective only, and a choice among runs (``auto``) both: it
    chooses among the models that fit. Raises ``UnknownAlgorithm``.
    """
    algorithm = get_algorithm(name)
    return algorithm.chooses_model or algorithm.predicts_ratings == ratings


def algorithm_params_validate(*, name: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate hyperparameters for ``name``, each and together (a model built with them would take them); raises
    ``UnknownAlgorithm`` or ``HyperparameterError``."""
    return get_algorithm(name)(params).hparams


__all__ = [
    "HyperparameterError",
    "UnknownAlgorithm",
    "algorithm_fits_objective",
    "algorithm_names",
    "algorithm_params_validate",
    "get_algorithm",
    "model_names",
    "register",
]
