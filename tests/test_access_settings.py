"""Settings from a fresh shell: var/.env for demo and development checkouts, one clear line when one is missing."""

import json
import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from recsys_site.env import env_rate
from tests.conftest import ROOT

SHOW_HOSTS = ["shell", "-c", "from django.conf import settings; print(settings.ALLOWED_HOSTS, settings.DEBUG)"]


def _manage(args: list[str], env_file, **variables: str) -> subprocess.CompletedProcess:
    """``manage.py`` as a fresh shell runs it: none of the test run's variables, production settings."""
    keep = {name: os.environ[name] for name in ("PATH", "HOME", "DATABASE_URL") if name in os.environ}
    env = {**keep, "RECSYS_ENV_FILE": str(env_file), **variables}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_a_missing_secret_key_is_one_line_naming_it(tmp_path):
    result = _manage(["check"], tmp_path / "absent.env")

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "manage.py: DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off (scripts/run_demo.sh writes one to var/.env)"
    ]


def test_commands_read_the_env_file_and_the_real_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "DJANGO_SECRET_KEY=from-the-file-0123456789\nDJANGO_ALLOWED_HOSTS=file.example\nDJANGO_DEBUG=1\n"
    )

    from_file = _manage(SHOW_HOSTS, env_file)
    overridden = _manage(SHOW_HOSTS, env_file, DJANGO_ALLOWED_HOSTS="env.example")

    assert from_file.returncode == 0, from_file.stderr
    assert from_file.stdout.strip().splitlines()[-1] == "['file.example'] True"
    assert overridden.stdout.strip().splitlines()[-1] == "['env.example'] True"


def test_throttle_rates_are_checked(monkeypatch):
    monkeypatch.setenv("RATE", "30/min")
    assert env_rate("RATE", "1/s") == "30/min"
    monkeypatch.setenv("RATE", "off")
    assert env_rate("RATE", "1/s") is None
    monkeypatch.setenv("RATE", "lots")
    with pytest.raises(ImproperlyConfigured, match="RATE='lots' is not a rate"):
        env_rate("RATE", "1/s")


def test_the_filesystem_broker_keeps_every_folder_under_var(tmp_path):
    show = "import json; from django.conf import settings; print(json.dumps(settings.CELERY_BROKER_TRANSPORT_OPTIONS))"
    result = _manage(
        ["shell", "-c", show], tmp_path / "absent.env", DJANGO_DEBUG="1", CELERY_BROKER_URL="filesystem://"
    )

    assert result.returncode == 0, result.stderr
    options = json.loads(result.stdout.strip().splitlines()[-1])
    folders = {name: value for name, value in options.items() if name.endswith("_folder") or "_folder_" in name}
    assert set(folders) == {"data_folder_in", "data_folder_out", "processed_folder", "control_folder"}
    assert all(value.startswith(str(ROOT / "var" / "broker")) for value in folders.values())  # none in the checkout
