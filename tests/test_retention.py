"""The artifact retention policy: live, once-live, parents of unfinished runs and the last N runs keep theirs."""

from pathlib import Path

import pytest
from django.core.management import call_command

from recsys_site.errors import Conflict
from tests.factories import clustered_catalog, scenario
from training.models import RunStatus, TrainingRun
from training.retention import artifacts_retain
from training.services import training_run_create, training_run_execute, training_run_promote
from training.tasks import artifacts_retain_task

pytestmark = pytest.mark.django_db


def _runs(count: int) -> list[TrainingRun]:
    clustered_catalog()
    movies = scenario()
    runs = []
    for _ in range(count):
        run = training_run_create(scenario=movies)
        assert training_run_execute(run_id=run.pk, device="cpu") == RunStatus.SUCCEEDED
        runs.append(TrainingRun.objects.get(pk=run.pk))
    return runs


def test_only_runs_outside_the_policy_lose_their_artifacts_and_keep_their_records(client, admin_user):
    runs = _runs(6)
    training_run_promote(run=runs[0])
    training_run_promote(run=runs[1])  # runs[0] stays the rollback target
    child = training_run_create(scenario=runs[2].scenario)  # queued: say it fine-tunes runs[2]
    TrainingRun.objects.filter(pk=child.pk).update(parent=runs[2])

    report = artifacts_retain(keep_last=2)

    assert report.deleted == [runs[3].pk] and report.freed_bytes == runs[3].artifact_size
    assert set(report.kept) == {runs[0].pk, runs[1].pk, runs[2].pk, runs[4].pk, runs[5].pk}
    gone = TrainingRun.objects.get(pk=runs[3].pk)
    assert not Path(runs[3].artifact_path).exists() and gone.artifact_path == "" and gone.artifact_size is None
    assert gone.metrics == runs[3].metrics and gone.artifact_sha256 == runs[3].artifact_sha256
    for run in (runs[0], runs[1], runs[2], runs[4], runs[5]):
        assert Path(run.artifact_path).is_dir()
    assert TrainingRun.objects.get(pk=child.pk).status == RunStatus.QUEUED
    client.force_login(admin_user)
    assert "deleted by the retention policy" in client.get(f"/runs/{gone.pk}/").content.decode()
    with pytest.raises(Conflict, match="retention policy"):
        training_run_promote(run=gone)


def test_a_dry_run_deletes_nothing_and_a_second_pass_finds_nothing(capsys):
    runs = _runs(3)

    call_command("artifacts_retain", "--keep", "1", "--dry-run")
    assert "would delete 2" in capsys.readouterr().out
    assert all(Path(run.artifact_path).is_dir() for run in runs)

    call_command("artifacts_retain", "--keep", "1")
    assert "deleted 2" in capsys.readouterr().out
    assert artifacts_retain_task() == []
    assert [Path(run.artifact_path).is_dir() for run in runs] == [False, False, True]
