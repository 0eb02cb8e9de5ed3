"""Search spaces: what a study samples for each algorithm, by default from the algorithms' declarations.

A space maps an algorithm's parameter name to a spec: ``{"low", "high", "log", "step"}`` for a number or
``{"choices": [...]}`` for a set of values. No Django here: Optuna and the registry only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from training.algorithms.params import Param
from training.algorithms.registry import get_algorithm

ALGORITHM_KEY = "algorithm"
Space = dict[str, dict[str, Any]]


class SpaceError(ValueError):
    """Raised with ``errors``: a mapping of ``<algorithm>.<parameter>`` to a readable message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{name}: {message}" for name, message in self.errors.items()))


def default_space(algorithm: str) -> Space:
    """The algorithm's declared search ranges (``Param.search``, ``log``, ``step``)."""
    return {param.name: _declared_spec(param) for param in get_algorithm(algorithm).params if param.search is not None}


def _declared_spec(param: Param) -> dict[str, Any]:
    assert param.search is not None
    if not param.numeric:
        return {"choices": list(param.search)}
    low, high = param.search
    return {"low": low, "high": high, "log": param.log, "step": param.step}


def space_clean(algorithm: str, overrides: Mapping[str, Any] | None) -> Space:
    """The default space of ``algorithm`` with ``overrides`` (parameter → spec) checked against the declarations.

    Raises :class:`SpaceError` naming every bad entry; an empty result (nothing to search) is not an error.
    """
    declared = {param.name: param for param in get_algorithm(algorithm).params}
    space = default_space(algorithm)
    errors: dict[str, str] = {}
    for name, spec in (overrides or {}).items():
        if name not in declared:
            errors[f"{algorithm}.{name}"] = f"unknown hyperparameter (known: {', '.join(sorted(declared))})"
            continue
        try:
            space[name] = _clean_spec(declared[name], spec)
        except ValueError as error:
            errors[f"{algorithm}.{name}"] = str(error)
    if errors:
        raise SpaceError(errors)
    return space


def _clean_spec(param: Param, spec: Any) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        raise ValueError('must be an object: {"low", "high", "log", "step"} or {"choices": [...]}')
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise ValueError("choices must be a non-empty list")
        return {"choices": [param.clean(value) for value in choices]}
    return _clean_range(param, spec)


def _clean_range(param: Param, spec: Mapping[str, Any]) -> dict[str, Any]:
    if not param.numeric:
        raise ValueError(f"a {param.kind.__name__} parameter is searched over choices")
    unknown = set(spec) - {"low", "high", "log", "step"}
    if unknown:
        raise ValueError(f"unknown keys {', '.join(sorted(unknown))}")
    try:
        low, high = param.clean(spec["low"]), param.clean(spec["high"])
    except KeyError:
        raise ValueError("a range needs low and high") from None
    log, step = bool(spec.get("log", False)), spec.get("step")
    if low > high:
        raise ValueError("low must not exceed high")
    if log and low <= 0:
        raise ValueError("a log-scale range must start above 0")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int | float) or step <= 0):
        raise ValueError("step must be a positive number")
    if log and step is not None and not (param.kind is int and step == 1):
        raise ValueError("a range is either log-scale or stepped, not both")
    return {"low": low, "high": high, "log": log, "step": step}


def distribution(param_kind: type, spec: Mapping[str, Any]) -> BaseDistribution:
    """The Optuna distribution of one spec."""
    if "choices" in spec:
        return CategoricalDistribution(spec["choices"])
    if param_kind is int:
        return IntDistribution(int(spec["low"]), int(spec["high"]), log=spec["log"], step=int(spec["step"] or 1))
    return FloatDistribution(float(spec["low"]), float(spec["high"]), log=spec["log"], step=spec["step"])


def distributions(algorithms: list[str], spaces: Mapping[str, Space]) -> dict[str, BaseDistribution]:
    """Every distribution of a study, named ``<algorithm>.<parameter>`` (plus ``algorithm`` when several)."""
    found: dict[str, BaseDistribution] = {}
    if len(algorithms) > 1:
        found[ALGORITHM_KEY] = CategoricalDistribution(algorithms)
    for algorithm in algorithms:
        kinds = {param.name: param.kind for param in get_algorithm(algorithm).params}
        for name, spec in spaces.get(algorithm, {}).items():
            found[f"{algorithm}.{name}"] = distribution(kinds[name], spec)
    return found


def suggest(trial: optuna.Trial, algorithms: list[str], spaces: Mapping[str, Space]) -> tuple[str, dict[str, Any]]:
    """Ask ``trial`` for an algorithm and its searched hyperparameters (names without the algorithm prefix)."""
    every = distributions(algorithms, spaces)
    algorithm = algorithms[0]
    if ALGORITHM_KEY in every:
        algorithm = _suggest_one(trial, ALGORITHM_KEY, every[ALGORITHM_KEY])
    prefix = f"{algorithm}."
    params = {
        name[len(prefix) :]: _suggest_one(trial, name, dist) for name, dist in every.items() if name.startswith(prefix)
    }
    return algorithm, params


def _suggest_one(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    assert isinstance(dist, CategoricalDistribution)
    return trial.suggest_categorical(name, dist.choices)


def trial_params(
    algorithm: str, params: Mapping[str, Any], algorithms: list[str], spaces: Mapping[str, Space]
) -> tuple[dict[str, Any], dict[str, BaseDistribution]]:
    """A run's hyperparameters as the study names them (``<algorithm>.<name>``), searched ones only, each
    inside its distribution (a default outside the searched range is left out), with their distributions."""
    every = distributions(algorithms, spaces)
    named = {f"{algorithm}.{name}": value for name, value in params.items()}
    if ALGORITHM_KEY in every:
        named[ALGORITHM_KEY] = algorithm
    kept = {name: value for name, value in named.items() if name in every and _inside(every[name], value)}
    return kept, {name: every[name] for name in kept}


def _inside(dist: BaseDistribution, value: Any) -> bool:
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))  # Optuna's own check, as add_trial applies it
    except (ValueError, TypeError):
        return False
