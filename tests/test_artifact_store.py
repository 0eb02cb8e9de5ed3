"""Artifacts published to and fetched from S3-protocol object storage (a local moto_server)."""

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from catalog.models import EndUser
from tests.conftest import free_port, listening, wait_until
from tests.factories import clustered_catalog, scenario, trained
from training.deletion import end_user_delete
from training.models import RunStatus
from training.retention import artifacts_retain
from training.services import training_run_create, training_run_execute, training_run_promote
from training.serving import model_cache

pytestmark = pytest.mark.django_db
BUCKET = "recsys-artifacts"


@pytest.fixture
def s3(settings, monkeypatch) -> Iterator:
    """A real S3-protocol server on a free loopback port, and the artifacts storage pointed at it."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    try:
        wait_until(lambda: listening(port), timeout=30)
        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket=BUCKET)
        settings.STORAGES = {
            **settings.STORAGES,
            "artifacts": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {
                    "bucket_name": BUCKET,
                    "endpoint_url": endpoint,
                    "location": "artifacts",
                    "file_overwrite": True,
                },
            },
        }
        yield client
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


def _keys(client) -> set[str]:
    return {entry["Key"] for entry in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def test_a_web_host_without_the_folder_serves_the_artifact_fetched_from_object_storage(s3, api):
    model_cache.clear()
    clustered_catalog()
    run = trained(scenario(algorithm="ease"), "ease")
    training_run_promote(run=run)
    folder = Path(run.artifact_path)
    prefix = f"artifacts/movies/run-{run.pk}/"
    assert _keys(s3) == {prefix + path.name for path in folder.iterdir()}
    before = api.get("/api/v1/scenarios/movies/recommendations/", {"user": "u4"}).json()

    shutil.rmtree(folder)  # another host: nothing local
    model_cache.clear()
    after = api.get("/api/v1/scenarios/movies/recommendations/", {"user": "u4"}).json()

    assert after["items"] == before["items"] and folder.is_dir()


def test_a_changed_object_is_refused_by_its_checksum(s3, api):
    model_cache.clear()
    clustered_catalog()
    run = trained(scenario(algorithm="ease"), "ease")
    training_run_promote(run=run)
    s3.put_object(Bucket=BUCKET, Key=f"artifacts/movies/run-{run.pk}/metadata.json", Body=b"{}")
    shutil.rmtree(run.artifact_path)
    model_cache.clear()

    response = api.get("/api/v1/scenarios/movies/recommendations/", {"user": "u4"})

    assert response.status_code == 503 and "checksum" in response.json()["detail"]


def test_retention_deletes_the_objects_too(s3):
    clustered_catalog()
    movies = scenario()
    runs = []
    for _ in range(2):
        run = training_run_create(scenario=movies)
        assert training_run_execute(run_id=run.pk, device="cpu") == RunStatus.SUCCEEDED
        runs.append(run)

    assert artifacts_retain(keep_last=1).deleted == [runs[0].pk]

    assert _keys(s3) and all(key.startswith(f"artifacts/movies/run-{runs[1].pk}/") for key in _keys(s3))


def test_deleting_an_end_user_rewrites_the_shared_copy(s3, api, django_capture_on_commit_callbacks):
    model_cache.clear()
    clustered_catalog()
    run = trained(scenario(algorithm="ease"), "ease")
    training_run_promote(run=run)
    old = s3.get_object(Bucket=BUCKET, Key=f"artifacts/movies/run-{run.pk}/model.safetensors")["Body"].read()

    with django_capture_on_commit_callbacks(execute=True):
        end_user_delete(user=EndUser.objects.get(external_id="u4"))
    shutil.rmtree(run.artifact_path)
    model_cache.clear()

    new = s3.get_object(Bucket=BUCKET, Key=f"artifacts/movies/run-{run.pk}/model.safetensors")["Body"].read()
    assert new != old
    assert api.get("/api/v1/scenarios/movies/recommendations/", {"user": "u5"}).status_code == 200
