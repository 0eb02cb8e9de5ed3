"""Artifacts are verified again when their files change on disk, and at a bounded interval, in every process that
serves them; no error shows a server path (training/artifacts.py, training/serving.py)."""

import os
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from tests.factories import clustered_catalog, live_run, scenario
from training.models import RunStatus, TrainingRun
from training.services import training_run_create, training_run_execute

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_model_cache")]
RECOMMEND = "/api/v1/scenarios/movies/recommendations/"


def _live_run() -> TrainingRun:
    clustered_catalog()
    return live_run(scenario(algorithm="ease"), "ease")


def _assert_refused_without_paths(response, reason: str) -> None:
    body = response.json()
    assert response.status_code == 503 and reason in body["detail"], body
    assert str(django_settings.ARTIFACT_ROOT) not in response.content.decode() and "/" not in body["detail"]


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_cached_model_whose_files_change_is_refused_at_the_next_request(api):
    run = _live_run()
    assert api.get(RECOMMEND, {"user": "u1"}).status_code == 200  # loaded and cached

    _flip_last_byte(Path(run.artifact_path) / "model.safetensors")

    _assert_refused_without_paths(api.get(RECOMMEND, {"user": "u1"}), "checksum")


def test_a_cached_model_whose_files_are_deleted_is_refused(api):
    run = _live_run()
    assert api.get(RECOMMEND, {"user": "u1"}).status_code == 200
    for path in Path(run.artifact_path).iterdir():
        path.unlink()
    Path(run.artifact_path).rmdir()

    _assert_refused_without_paths(api.get(RECOMMEND, {"user": "u1"}), "does not exist")


def test_a_change_that_keeps_size_and_time_is_caught_at_the_next_interval(api, settings):
    settings.RECSYS_ARTIFACT_VERIFY_SECONDS = 1
    run = _live_run()
    tensors = Path(run.artifact_path) / "model.safetensors"
    assert api.get(RECOMMEND, {"user": "u1"}).status_code == 200
    stat = tensors.stat()
    _flip_last_byte(tensors)
    os.utime(tensors, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the files look untouched
    assert api.get(RECOMMEND, {"user": "u1"}).status_code == 200  # served from memory, within the interval

    time.sleep(1.1)

    _assert_refused_without_paths(api.get(RECOMMEND, {"user": "u1"}), "checksum")


def test_a_run_that_fails_on_the_file_system_names_no_server_path(settings, tmp_path):
    clustered_catalog()
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    settings.ARTIFACT_ROOT = blocked  # saving the artifact fails with the path in the OS error
    run = training_run_create(scenario=scenario(algorithm="popularity"))

    assert training_run_execute(run_id=run.pk, device="cpu") == RunStatus.FAILED

    error = TrainingRun.objects.get(pk=run.pk).error
    assert error and str(tmp_path) not in error and "not-a-folder" not in error
