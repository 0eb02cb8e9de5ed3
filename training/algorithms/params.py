"""Hyperparameter declarations and their validation.

Each algorithm declares a tuple of :class:`Param`. Scenario forms and the API
validate user input against it when a scenario is saved, so a bad value is a
form/API error and never a crashed training job.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


class HyperparameterError(ValueError):
    """Raised with ``errors``: a mapping of parameter name to a readable message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{name}: {message}" for name, message in self.errors.items()))


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its type, default and allowed values.

    ``kind`` is one of ``int``, ``float``, ``bool``, ``str``. ``minimum``/``maximum``
    bound numbers (inclusive); ``choices`` restricts to a set of values.

    Tuning reads its default search space from here: ``search`` is the range a study samples a number from
    (``(low, high)``, inside ``minimum``..``maximum``) or the values it tries for a string or boolean; ``None``
    leaves the parameter at its value. ``log`` samples the range on a log scale, ``step`` on a grid.
    """

    name: str
    kind: type
    default: Any
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = field(default=None)
    search: tuple[Any, ...] | None = None
    log: bool = False
    step: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in (int, float, bool, str):
            raise TypeError(f"Param {self.name}: unsupported kind {self.kind!r}")
        # A declaration whose own default or search range is invalid is a programming error: fail at import.
        self.clean(self.default)
        for value in self.search or ():
            self.clean(value)
        if self.search is not None and self.numeric and len(self.search) != 2:
            raise TypeError(f"Param {self.name}: a numeric search range is (low, high)")

    @property
    def numeric(self) -> bool:
        return self.kind in (int, float)

    def clean(self, value: Any) -> Any:
        """Return ``value`` coerced to this parameter's type, or raise ``ValueError``."""
        value = self._coerce(value)
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"must be at least {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"must be at most {self.maximum:g}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"must be one of {', '.join(map(str, self.choices))}")
        return value

    def _coerce(self, value: Any) -> Any:
        return _COERCERS[self.kind](value)

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly description for forms and the API."""
        return {
            "name": self.name,
            "type": self.kind.__name__,
            "default": self.default,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "choices": list(self.choices) if self.choices is not None else None,
            "help": self.help,
            "search": list(self.search) if self.search is not None else None,
            "log": self.log,
            "step": self.step,
        }


def log_range(
    name: str, kind: type, default: float, help: str, bounds: tuple[float, float], search: tuple[float, float]
) -> Param:
    """A number tuned on a log scale (a size, a step size, a penalty): allowed within ``bounds`` (inclusive),
    searched over ``search``."""
    minimum, maximum = bounds
    return Param(name, kind, default, help=help, minimum=minimum, maximum=maximum, search=search, log=True)


def early_stopping_patience(*, default: int, maximum: int, steps: str = "Epochs", metric: str = "NDCG@10") -> Param:
    """The patience of validation early stopping, declared alike by every iterative model."""
    return Param(
        "early_stopping_patience",
        int,
        default,
        help=f"{steps} without a better validation {metric} before stopping.",
        minimum=1,
        maximum=maximum,
    )


def validate_params(schema: Iterable[Param], params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate ``params`` against ``schema`` and return them complete with defaults.

    Unknown names and bad values are collected and raised together in one
    :class:`HyperparameterError`, so the user sees every problem at once.
    """
    declared = {param.name: param for param in schema}
    params = dict(params or {})
    errors: dict[str, str] = {}
    for name in params.keys() - declared.keys():
        known = ", ".join(sorted(declared)) or "none"
        errors[name] = f"unknown hyperparameter (known: {known})"
    cleaned: dict[str, Any] = {}
    for name, param in declared.items():
        if name not in params:
            cleaned[name] = param.default
            continue
        try:
            cleaned[name] = param.clean(params[name])
        except ValueError as error:
            errors[name] = str(error)
    if errors:
        raise HyperparameterError(dict(sorted(errors.items())))
    return cleaned


# Each coercer takes what a form, the API or a command line sends (JSON values or strings) and returns the
# parameter's type, or raises ValueError with the message shown to the user.


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false", "1", "0", "yes", "no"}:
        return value.strip().lower() in {"true", "1", "yes"}
    raise ValueError("must be true or false")


def _to_int(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError("must be an integer")


def _to_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("must be a number")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except ValueError:
        raise ValueError("must be a number") from None
    except OverflowError:  # an integer beyond a double's range
        number = float("inf")
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError("must be a finite number")
    return number


def _to_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


_COERCERS: dict[type, Callable[[Any], Any]] = {bool: _to_bool, int: _to_int, float: _to_float, str: _to_str}
