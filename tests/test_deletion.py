"""Deleting end users and scenarios: their data leaves events, artifacts, evaluations and recommendations, and
each deletion is in the audit log (training/deletion.py)."""

from pathlib import Path

import numpy as np
import pytest
from django.db import transaction
from django.test import Client
from safetensors.torch import load_file

from accounts.models import AuditAction, AuditRecord
from catalog.models import EndUser, Interaction
from catalog.services import EventRow, interactions_ingest
from dashboards.services import account_create
from scenarios.models import Scenario
from tests.factories import START, clustered_catalog, scenario, trained
from training.artifacts import artifact_load
from training.deletion import end_user_delete, run_forget_deleted_users
from training.models import Promotion, RunEvaluation, RunStatus, TrainingRun
from training.services import training_run_promote

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_model_cache")]


def _trained(slug: str = "movies", algorithm: str = "ease", **params) -> TrainingRun:
    existing = Scenario.objects.filter(slug=slug).first()
    target = existing or scenario(slug=slug, algorithm=algorithm, hyperparameters=params)
    return trained(target, algorithm, params=params)


def _training_row(run: TrainingRun, user_id: int) -> int:
    """How many training items the artifact keeps for the user (their row of the stored training matrix)."""
    directory = Path(run.artifact_path)
    index = load_file(str(directory / "index.safetensors"))
    position = int(np.flatnonzero(index["user_ids"].numpy() == user_id)[0])
    crow = load_file(str(directory / "model.safetensors"))["train_crow"]
    return int(crow[position + 1] - crow[position])


def _recommend(api, user: str) -> dict:
    response = api.get("/api/v1/scenarios/movies/recommendations/", {"user": user, "k": 5})
    assert response.status_code == 200, response.content
    return response.json()


def test_deleting_an_end_user_clears_them_from_events_artifacts_evaluations_and_recommendations(
    api, admin_user, django_capture_on_commit_callbacks
):
    clustered_catalog()
    run = _trained()
    training_run_promote(run=run)
    user = EndUser.objects.get(external_id="u4")
    assert _training_row(run, user.pk) > 0 and _recommend(api, "u4")["fallback"] is None
    others_before = _recommend(api, "u5")["items"]
    events = Interaction.objects.filter(user=user).count()

    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete("/api/v1/end-users/u4/")

    assert response.status_code == 204
    assert not EndUser.objects.filter(external_id="u4").exists()
    assert not Interaction.objects.filter(user_id=user.pk).exists()
    run.refresh_from_db()
    assert run.deleted_users == 1 and run.contains_deleted_users
    artifact_load(directory=Path(run.artifact_path), sha256=run.artifact_sha256)  # rewritten and verified
    assert _training_row(run, user.pk) == 0
    assert not [p for p in Path(run.artifact_path).parent.iterdir() if p.name.startswith(f"run-{run.pk}.")]
    evaluation = RunEvaluation.objects.get(run=run)
    assert user.pk not in evaluation.user_ids
    assert all(len(values) == len(evaluation.user_ids) for values in evaluation.vectors.values())
    assert _recommend(api, "u4")["fallback"] == "popularity"
    assert _recommend(api, "u5")["items"] == others_before
    record = AuditRecord.objects.get(action=AuditAction.END_USER_DELETED)
    assert record.subject == "u4" and record.actor == admin_user and record.actor_name == "admin"
    assert record.details["events"] == events and record.details["runs"] == [run.pk]
    assert api.get(f"/api/v1/runs/{run.pk}/").json()["contains_deleted_users"] is True
    listed = api.get("/api/v1/audit-records/", {"subject": "u4"}).json()["results"]
    assert [(entry["action"], entry["actor_name"]) for entry in listed] == [("end_user_deleted", "admin")]


def test_a_run_training_while_a_user_is_deleted_clears_them_once_it_succeeds(api, django_capture_on_commit_callbacks):
    clustered_catalog()
    run = _trained()
    user = EndUser.objects.get(external_id="u4")
    user_id = user.pk
    # The run read u4's events and is still training when u4 is deleted: the deletion cannot rewrite it yet.
    TrainingRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        end_user_delete(user=user)
    assert _training_row(run, user_id) > 0  # its artifact still holds u4
    marked = TrainingRun.objects.get(pk=run.pk).deleted_users  # 1 when its evaluation was already written
    TrainingRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)  # it saves and succeeds

    with django_capture_on_commit_callbacks(execute=True):
        cleared = run_forget_deleted_users(run_id=run.pk, since=run.started_at)

    run.refresh_from_db()
    assert cleared == [user_id] and run.deleted_users == 1 and marked in (0, 1)
    artifact_load(directory=Path(run.artifact_path), sha256=run.artifact_sha256)  # rewritten and verified
    assert _training_row(run, user_id) == 0
    assert user_id not in RunEvaluation.objects.get(run=run).user_ids


def test_a_run_that_never_saw_the_user_is_left_alone(api, django_capture_on_commit_callbacks):
    clustered_catalog()
    run = _trained()
    interactions_ingest(events=[EventRow(user="late", item="i1", occurred_at=START, event_id="late-1")])
    late = EndUser.objects.get(external_id="late")

    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete("/api/v1/end-users/late/").status_code == 204

    after = TrainingRun.objects.get(pk=run.pk)
    assert after.deleted_users == 0 and after.artifact_sha256 == run.artifact_sha256
    assert AuditRecord.objects.get().details == {
        "end_user_id": late.pk,
        "events": 1,
        "runs": [],
        "artifacts_rewritten": [],
        "artifacts_removed": [],
    }


def test_sequential_models_forget_the_deleted_users_history(django_capture_on_commit_callbacks):
    clustered_catalog()
    run = _trained(algorithm="sasrec", epochs=2, embedding_size=8, max_length=8, layers=1)
    user = EndUser.objects.get(external_id="u7")
    position = int(np.flatnonzero(artifact_load(directory=Path(run.artifact_path), sha256=run.artifact_sha256)
                                  .user_ids == user.pk)[0])  # fmt: skip

    with django_capture_on_commit_callbacks(execute=True):
        end_user_delete(user=user)

    run.refresh_from_db()
    histories = load_file(str(Path(run.artifact_path) / "model.safetensors"))["histories"]
    assert not histories[position].any() and histories.any()  # theirs is empty, the others are kept
    assert AuditRecord.objects.get().actor is None and AuditRecord.objects.get().actor_name == ""


def test_a_rolled_back_deletion_leaves_the_artifact_as_the_database_knows_it(django_capture_on_commit_callbacks):
    clustered_catalog()
    run = _trained()
    user = EndUser.objects.get(external_id="u4")
    user_id = user.pk

    class Refused(Exception):
        pass

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Refused), transaction.atomic():
        end_user_delete(user=user)
        raise Refused

    run.refresh_from_db()
    assert EndUser.objects.filter(pk=user_id).exists() and run.deleted_users == 0
    artifact_load(directory=Path(run.artifact_path), sha256=run.artifact_sha256)
    assert _training_row(run, user_id) > 0
    assert not AuditRecord.objects.exists()


def test_an_id_with_a_slash_is_deleted_and_audited(api, django_capture_on_commit_callbacks):
    interactions_ingest(events=[EventRow(user="shop/42", item="i1", occurred_at=START, event_id="s-1")])

    with django_capture_on_commit_callbacks(execute=True):
        assert api.get("/api/v1/end-users/shop%2F42/").status_code == 200
        assert api.delete("/api/v1/end-users/shop%2F42/").status_code == 204

    assert not EndUser.objects.exists() and AuditRecord.objects.get().subject == "shop/42"


def test_the_admin_action_deletes_through_the_same_path(django_capture_on_commit_callbacks):
    clustered_catalog()
    run = _trained()
    admin = account_create(username="ada", password="admin-pass-123", role="admin")
    browser = Client()
    browser.force_login(admin)
    user = EndUser.objects.get(external_id="u4")
    user_id = user.pk

    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(
            "/admin/catalog/enduser/",
            {"action": "delete_selected", "_selected_action": [user.pk], "post": "yes"},
        )

    assert response.status_code == 302 and not EndUser.objects.filter(pk=user_id).exists()
    assert TrainingRun.objects.get(pk=run.pk).deleted_users == 1
    record = AuditRecord.objects.get()
    assert record.actor_name == "ada" and record.subject == "u4"
    assert "u4" in browser.get("/admin/accounts/auditrecord/").text  # the admin role reads the audit log


def test_the_scenario_page_marks_runs_with_deleted_users_and_offers_a_retrain(
    admin_user, django_capture_on_commit_callbacks
):
    clustered_catalog()
    run = _trained()
    with django_capture_on_commit_callbacks(execute=True):
        end_user_delete(user=EndUser.objects.get(external_id="u4"))
    browser = Client()
    browser.force_login(admin_user)

    page = browser.get("/scenarios/movies/").text

    assert 'data-testid="deleted-users"' in page and "contains deleted users" in page
    assert f'data-run="{run.pk}"' in page and 'data-testid="retrain-deleted"' in page


def test_deleting_a_scenario_audits_its_history_and_removes_its_artifacts(
    api, admin_user, django_capture_on_commit_callbacks
):
    clustered_catalog()
    first = _trained()
    training_run_promote(run=first)
    second = _trained()
    training_run_promote(run=second)
    folder = Path(first.artifact_path).parent
    assert folder.is_dir()

    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete("/api/v1/scenarios/movies/").status_code == 204

    assert not folder.exists() and not TrainingRun.objects.exists() and not Promotion.objects.exists()
    record = AuditRecord.objects.get(action=AuditAction.SCENARIO_DELETED)
    assert record.subject == "movies" and record.actor == admin_user
    assert [run["id"] for run in record.details["runs"]] == [first.pk, second.pk]
    assert record.details["runs"][0]["artifact_sha256"] == first.artifact_sha256
    assert [(p["action"], p["run"]) for p in record.details["promotions"]] == [
        ("promote", first.pk),
        ("promote", second.pk),
    ]
    assert record.details["scenario"]["live_run"] == second.pk


def test_a_scenario_another_names_as_its_group_is_refused_and_keeps_everything(api, django_capture_on_commit_callbacks):
    clustered_catalog()
    run = _trained()
    Scenario.objects.create(slug="member", name="Member", parent=Scenario.objects.get(slug="movies"))

    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete("/api/v1/scenarios/movies/")

    assert response.status_code == 409 and "member" in response.json()["detail"].lower()
    assert Path(run.artifact_path).is_dir() and not AuditRecord.objects.exists()


def test_deleting_an_end_user_clears_them_from_a_trials_validation_vectors(django_capture_on_commit_callbacks):
    clustered_catalog()
    run = _trained()
    user, other = EndUser.objects.get(external_id="u4"), EndUser.objects.get(external_id="u5")
    RunEvaluation.objects.filter(run=run).update(
        validation_user_ids=[other.pk, user.pk], validation_vectors={"ndcg@10": [0.25, 0.5]}
    )

    with django_capture_on_commit_callbacks(execute=True):
        end_user_delete(user=user)

    evaluation = RunEvaluation.objects.get(run=run)
    assert evaluation.validation_user_ids == [other.pk] and evaluation.validation_vectors == {"ndcg@10": [0.25]}
