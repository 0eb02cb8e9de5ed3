"""One experiment's settings, read from a TOML file (``configs/NAME.toml``): what runs, on which data, and the
students' and the content-prior hybrid's hyperparameters as plain tables."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from benchmarks.multi_scenario.data import SCENARIOS
from benchmarks.multi_scenario.fitting import student_default
from training.algorithms.params import HyperparameterError
from training.algorithms.registry import get_algorithm

PARTS = ("adaptation", "cold", "students")
HYBRIDS = {"prior": "prior_hybrid", "side": "hybrid"}  # config name: the figures' label
PRIOR_MODE = {"content": "prior"}
PRIOR_SET_BY_PART = (*PRIOR_MODE, "prior_rank", "prior_l2", "epochs")  # what (e) itself sets for the prior hybrid
STUDENT_SET_BY_PART = ("embedding_size", "layers", "epochs")  # what (d) itself sets for a student


class ConfigError(ValueError):
    """A config file that cannot describe a run: the message names the setting."""


@dataclasses.dataclass(frozen=True)
class ColdSettings:
    hybrids: tuple[str, ...] = tuple(HYBRIDS)
    draws: int = 1  # draws of the cold films; the first is the reported one
    content_rank: int | None = None  # the side hybrid's; None: chosen on the pseudo-cold films
    prior_params: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class StudentSettings:
    scenarios: tuple[str, ...] = SCENARIOS
    seeds: int = 3
    # depths tried (distill's default unless set); each seed keeps the best on validation
    layers: tuple[int, ...] = dataclasses.field(default_factory=lambda: (student_default("layers"),))
    params: dict[str, Any] = dataclasses.field(default_factory=dict)  # distill's, as the API takes them


@dataclasses.dataclass(frozen=True)
class Config:
    out: str  # benchmarks/results/OUT.json
    datasets: tuple[str, ...]
    parts: tuple[str, ...]
    device: str = "cpu"
    epochs: int = 200
    cold: ColdSettings = ColdSettings()
    students: StudentSettings = StudentSettings()
    source: str = ""  # the config file, as the command that reproduces the results names it


def config_load(*, path: Path) -> Config:
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: {error}") from error
    return config_parse(raw=raw, source=str(path))


def config_parse(*, raw: dict[str, Any], source: str = "") -> Config:
    """Check every setting (unknown keys included) so that a typo fails before hours of training."""
    try:
        return _config_parse(raw, source)
    except TypeError as error:  # a value of the wrong type (a string for a count, a number for a list)
        raise ConfigError(f"a setting has the wrong type: {error}") from error


def _config_parse(raw: dict[str, Any], source: str) -> Config:
    raw = dict(raw)
    cold, students = dict(raw.pop("cold", {})), dict(raw.pop("students", {}))
    known = {field.name for field in dataclasses.fields(Config)} - {"cold", "students", "source"}
    _no_unknown(raw, known, "")
    parts = tuple(raw.get("parts", ()))
    _require(bool(parts) and set(parts) <= set(PARTS), f"parts must be a non-empty list of {', '.join(PARTS)}")
    _require(isinstance(raw.get("out"), str) and raw["out"].isidentifier(), "out must be a name (letters, _)")
    _require(bool(raw.get("datasets")), "datasets must name at least one folder of the data root")
    _require(isinstance(raw.get("epochs", 200), int) and raw.get("epochs", 200) >= 1, "epochs must be at least 1")
    return Config(
        out=raw["out"],
        datasets=tuple(raw["datasets"]),
        parts=parts,
        device=str(raw.get("device", "cpu")),
        epochs=raw.get("epochs", 200),
        cold=_cold_parse(cold),
        students=_students_parse(students),
        source=source,
    )


def _cold_parse(raw: dict[str, Any]) -> ColdSettings:
    _no_unknown(raw, {field.name for field in dataclasses.fields(ColdSettings)}, "cold.")
    settings = ColdSettings(**{**raw, "hybrids": tuple(raw.get("hybrids", HYBRIDS))})
    _require(set(settings.hybrids) <= set(HYBRIDS), f"cold.hybrids must name some of {', '.join(HYBRIDS)}")
    _require(settings.draws >= 1, "cold.draws must be at least 1")
    prior = _checked("sasrec", "cold.prior_params", settings.prior_params, PRIOR_SET_BY_PART, PRIOR_MODE)
    return dataclasses.replace(settings, prior_params=prior)


def _students_parse(raw: dict[str, Any]) -> StudentSettings:
    _no_unknown(raw, {field.name for field in dataclasses.fields(StudentSettings)}, "students.")
    settings = StudentSettings(**{**raw, **{key: tuple(raw[key]) for key in ("scenarios", "layers") if key in raw}})
    _require(set(settings.scenarios) <= set(SCENARIOS), f"students.scenarios must name some of {', '.join(SCENARIOS)}")
    _require(settings.seeds >= 1, "students.seeds must be at least 1")
    _require(
        bool(settings.layers) and set(settings.layers) <= {1, 2} and len(set(settings.layers)) == len(settings.layers),
        "students.layers must list 1, 2 or both, once each",
    )
    params = _checked("distill", "students.params", settings.params, STUDENT_SET_BY_PART, {})
    return dataclasses.replace(settings, params=params)


def _checked(algorithm: str, table: str, params: dict, reserved: tuple[str, ...], context: dict) -> dict:
    """``params`` as ``algorithm`` takes them (checked with ``context`` beside them, as the API checks them)."""
    taken = [name for name in params if name in reserved]
    _require(not taken, f"{table}: {', '.join(taken)} is set by the benchmark itself")
    try:
        checked = get_algorithm(algorithm)({**context, **params}).hparams
    except HyperparameterError as error:
        raise ConfigError(f"{table}: {error}") from error
    return {name: checked[name] for name in params}


def _no_unknown(raw: dict[str, Any], known: set[str], prefix: str) -> None:
    unknown = sorted(set(raw) - known)
    _require(not unknown, f"unknown setting {', '.join(prefix + name for name in unknown)}")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)
