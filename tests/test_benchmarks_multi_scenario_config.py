"""The multi-scenario benchmark's config files: every shipped one loads, and a bad setting fails before training."""

from pathlib import Path

import pytest

from benchmarks.multi_scenario.config import ConfigError, config_load, config_parse
from training.algorithms.registry import get_algorithm

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "benchmarks" / "multi_scenario" / "configs").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.stem)
def test_every_shipped_config_loads(path):
    config = config_load(path=path)

    assert config.out and config.datasets and config.parts


def test_student_params_are_checked_as_the_api_checks_them():
    raw = {"out": "x", "datasets": ["ml-100k"], "parts": ["students"], "students": {"params": {"alpha": 7}}}

    with pytest.raises(ConfigError, match=r"students\.params"):
        config_parse(raw=raw)


@pytest.mark.parametrize(
    "name, value",
    [("alpha", 1.0), ("temperature", 1.0), ("dropout", 0.0), ("head_by", "teacher"), ("teacher_init", True),
     ("learning_rate_schedule", "cosine"), ("finetune", True)],
)  # fmt: skip
def test_a_student_setting_distill_no_longer_takes_is_refused(name, value):
    raw = {"out": "x", "datasets": ["ml-100k"], "parts": ["students"], "students": {"params": {name: value}}}

    with pytest.raises(ConfigError, match=rf"students\.params: {name}: unknown hyperparameter"):
        config_parse(raw=raw)


def test_the_teacher_init_part_is_gone():
    with pytest.raises(ConfigError, match="parts must be"):
        config_parse(raw={"out": "x", "datasets": ["ml-100k"], "parts": ["teacher-init"]})


def test_students_try_distills_default_depth_unless_told():
    raw = {"out": "x", "datasets": ["ml-100k"], "parts": ["students"]}

    assert config_parse(raw=raw).students.layers == (get_algorithm("distill")().hparams["layers"],)


def test_a_setting_the_benchmark_makes_itself_is_refused():
    raw = {"out": "x", "datasets": ["ml-100k"], "parts": ["students"], "students": {"params": {"layers": 2}}}

    with pytest.raises(ConfigError, match="set by the benchmark itself"):
        config_parse(raw=raw)


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"out": "x", "datasets": ["ml-100k"], "parts": ["everything"]}, "parts"),
        ({"out": "x", "datasets": ["ml-100k"], "parts": ["cold"], "epoch": 3}, "unknown setting epoch"),
        ({"out": "x", "datasets": ["ml-100k"], "parts": ["cold"], "cold": {"draws": 0}}, "cold.draws"),
        ({"out": "x", "datasets": ["ml-100k"], "parts": ["cold"], "cold": {"draws": "3"}}, "wrong type"),
        ({"out": "x", "datasets": ["ml-100k"], "parts": ["students"], "students": {"seeds": [1]}}, "wrong type"),
        ({"out": "x", "datasets": ["ml-100k"], "parts": ["students"], "students": {"layers": [3]}}, "layers"),
        ({"out": "x", "datasets": ["ml-100k"], "parts": ["students"], "students": {"scenarios": ["x"]}}, "scenarios"),
    ],
)
def test_bad_settings_name_the_setting(raw, message):
    with pytest.raises(ConfigError, match=message):
        config_parse(raw=raw)


def test_a_file_that_is_not_toml_is_a_config_error(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("out = [")

    with pytest.raises(ConfigError, match=r"broken\.toml"):
        config_load(path=path)
