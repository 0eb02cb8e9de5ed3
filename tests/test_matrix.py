"""The scenario × model matrix of a group is a record: each cell's split, stale and n/a cells, baselines, access."""

import json
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.services import EventRow, interactions_ingest
from dashboards.services import account_create
from recsys_site.errors import ValidationFailed
from recsys_site.serving_version import catalog_version_bump
from scenarios.models import Scenario
from tests.conftest import wait_until
from tests.factories import START
from tests.test_groups import _group
from training.matrix import group_matrix, group_matrix_compute, matrix_job_create, matrix_job_execute
from training.models import MatrixCell, RunStatus, TrainingRun
from training.services import training_run_create, training_run_execute

pytestmark = pytest.mark.django_db

SASREC = {"embedding_size": 8, "layers": 1, "heads": 1, "max_length": 5, "batch_size": 64, "epochs": 2}


def _train(scenario, algorithm="ease", **params):
    run = training_run_create(scenario=scenario, algorithm=algorithm, params=params)
    assert training_run_execute(run_id=run.pk, device="cpu") == RunStatus.SUCCEEDED
    return TrainingRun.objects.get(pk=run.pk)


def test_the_matrix_covers_every_member_and_run(client):
    group, action, drama = _group()
    runs = [_train(group), _train(action), _train(drama), _train(group, "item_knn")]

    made = group_matrix_compute(group=group)

    # Two group runs on both members, each member run on its own member: the other two cells are n/a.
    assert made == 6 and MatrixCell.objects.count() == 6
    assert group_matrix_compute(group=group) == 0  # nothing left to compute
    matrix = group_matrix(group=group)
    assert [m.slug for m in matrix.members] == ["action", "drama"] and matrix.complete
    for run in (runs[0], runs[3]):
        for member in (action, drama):
            assert 0.0 <= matrix.cells[(run.pk, member.pk)].metrics["ndcg@10"] <= 1.0
    assert matrix.baselines == {action.pk: runs[1].pk, drama.pk: runs[2].pk}

    account_create(username="vera", password="viewer-pass-123", role="viewer")
    client.login(username="vera", password="viewer-pass-123")
    page = client.get("/scenarios/all/matrix/").content.decode()
    assert 'id="matrix-plot"' in page and "drama" in page and "n/a" in page


def test_each_cell_records_its_split_and_every_metric_at_every_k():
    group, action, _ = _group()
    run = _train(group)
    group_matrix_compute(group=group)

    cell = MatrixCell.objects.get(run=run, scenario=action)

    assert cell.split["source"] == "all" and cell.split["protocol"] == "leave_last_out"
    assert len(cell.split["test_digest"]) == 64 and cell.split["snapshot"] and cell.split["test_pairs"] > 0
    for k in (5, 10):  # the group's K list, less the K above a member's 10 items
        for metric in ("precision", "recall", "ndcg", "map", "mrr", "hit"):
            assert f"{metric}@{k}" in cell.metrics
    assert cell.validation["ndcg@10"] is not None


def test_the_matrix_mixes_no_splits_runs_of_an_old_split_are_na_and_stale_cells_are_recomputed_on_request():
    group, action, drama = _group()
    old_group_run, member_run = _train(group), _train(action)
    group_matrix_compute(group=group)
    old_split = MatrixCell.objects.get(run=member_run, scenario=action).split

    Scenario.objects.filter(pk=group.pk).update(split="random", seed=7)  # the group's split changes
    group.refresh_from_db()
    matrix = group_matrix(group=group)

    # Runs trained on the old split may have trained on the new test events: their cells are n/a, never a score.
    assert {matrix.cells[(old_group_run.pk, m.pk)].state for m in (action, drama)} == {"n/a"}
    assert "another split" in matrix.cells[(member_run.pk, action.pk)].reason

    new_group_run, new_member_run = _train(group), _train(action)
    assert group_matrix_compute(group=group) == 3  # the new runs' cells
    MatrixCell.objects.filter(run=new_member_run).update(split=old_split)  # a cell computed on the old split
    assert group_matrix(group=group).cells[(new_member_run.pk, action.pk)].state == "stale"
    assert group_matrix_compute(group=group) == 1  # computed again on request
    matrix = group_matrix(group=group)
    assert matrix.cells[(new_member_run.pk, action.pk)].state == "ok" and matrix.complete
    assert matrix.cells[(new_group_run.pk, drama.pk)].state == "ok"
    recomputed = MatrixCell.objects.get(run=new_member_run, scenario=action).split
    assert recomputed["protocol"] == "random" and recomputed["seed"] == 7
    assert recomputed["test_digest"] != old_split["test_digest"]


def test_new_events_make_runs_of_the_old_data_na_and_cells_of_the_old_data_stale():
    group, action, drama = _group()
    Scenario.objects.filter(pk=group.pk).update(split="random", seed=7)
    group.refresh_from_db()
    group_run = _train(group)
    assert group_matrix_compute(group=group) == 2
    scored = MatrixCell.objects.get(run=group_run, scenario=action).split
    earlier = START - timedelta(days=1)
    interactions_ingest(
        events=[
            EventRow(user="newcomer", item=f"i{n}", kind="rating", value=4.0, occurred_at=earlier) for n in range(3)
        ]
    )  # back-dated events of a member: the group's random split is drawn anew

    # The run may have trained on the new split's test events: n/a, and never scored on it.
    cells = group_matrix(group=group).cells
    for member in (action, drama):
        assert cells[(group_run.pk, member.pk)].state == "n/a"
        assert f"data {scored['snapshot'][:8]} → " in cells[(group_run.pk, member.pk)].reason
    assert group_matrix_compute(group=group) == 0
    assert MatrixCell.objects.get(run=group_run, scenario=action).split == scored

    member_run = _train(action)
    assert group_matrix_compute(group=group) == 1
    MatrixCell.objects.filter(run=member_run).update(split=scored)  # a cell computed on the earlier data
    cell = group_matrix(group=group).cells[(member_run.pk, action.pk)]
    assert cell.state == "stale" and f"data {scored['snapshot'][:8]} → " in cell.reason
    assert group_matrix_compute(group=group) == 1  # computed again on request
    assert group_matrix(group=group).cells[(member_run.pk, action.pk)].state == "ok"
    assert MatrixCell.objects.get(run=member_run, scenario=action).split["snapshot"] == member_run.split["snapshot"]


def test_a_member_runs_own_cell_is_its_recorded_test_metrics_sequential_or_not():
    group, action, _ = _group()
    sasrec, ease = _train(action, "sasrec", **SASREC), _train(action)
    star = _train(group, "star", **SASREC)  # a group's sequential model, scored in each member's domain

    assert group_matrix_compute(group=group) == 4

    # A sequential model predicts test after the training and the validation events, as its run was evaluated.
    cells = group_matrix(group=group).cells
    for run in (sasrec, ease):
        metrics = cells[(run.pk, action.pk)].metrics
        shared = set(metrics) & set(run.metrics) - {"evaluated_users"}
        assert {"ndcg@10", "recall@5", "mrr@10"} <= shared
        assert {name: metrics[name] for name in shared} == pytest.approx({name: run.metrics[name] for name in shared})
        assert metrics["evaluated_users"] == run.metrics["evaluated_users"]
    assert 0.0 <= cells[(star.pk, action.pk)].metrics["ndcg@10"] <= 1.0


def test_a_member_only_model_scored_on_another_member_is_na():
    group, action, drama = _group()
    action_run = _train(action)
    group_matrix_compute(group=group)

    cell = group_matrix(group=group).cells[(action_run.pk, drama.pk)]

    assert cell.state == "n/a" and cell.reason == "trained on action only"
    assert not MatrixCell.objects.filter(run=action_run, scenario=drama).exists()


def test_a_polled_matrix_reads_the_groups_events_again_only_once_they_change(django_capture_on_commit_callbacks):
    group, action, _ = _group()
    _train(action)
    with django_capture_on_commit_callbacks(execute=True):
        catalog_version_bump()  # as the catalogue's import did, once committed
    group_matrix(group=group)

    def events_read() -> int:
        with CaptureQueriesContext(connection) as queries:
            group_matrix(group=group)
        return sum("catalog_interaction" in query["sql"] and "count(*)" not in query["sql"] for query in queries)

    unchanged = events_read()
    interactions_ingest(events=[EventRow(user="u1", item="i1", kind="click", occurred_at=START)])
    changed = events_read()

    assert unchanged == 0 and changed > 0


def test_a_member_run_from_before_runs_recorded_their_split_is_na_not_scored_on_a_split_it_may_have_trained_on():
    group, action, _ = _group()
    legacy, recorded = _train(action), _train(action)
    TrainingRun.objects.filter(pk=legacy.pk).update(split={})
    group_matrix_compute(group=group)

    cells = group_matrix(group=group).cells

    assert cells[(legacy.pk, action.pk)].state == "n/a"
    assert "before runs recorded their split" in cells[(legacy.pk, action.pk)].reason
    assert not MatrixCell.objects.filter(run=legacy).exists()
    assert cells[(recorded.pk, action.pk)].state == "ok"


def test_the_baseline_is_the_members_best_run_on_validation_unless_the_analyst_picks_one():
    group, action, _ = _group()
    runs = [_train(action, "ease"), _train(action, "popularity"), _train(group)]
    group_matrix_compute(group=group)
    cells = group_matrix(group=group).cells
    best = max(runs[:2], key=lambda run: cells[(run.pk, action.pk)].validation["ndcg@10"])

    assert group_matrix(group=group).baselines[action.pk] == best.pk
    picked = group_matrix(group=group, baselines={action.pk: runs[2].pk})
    assert picked.baselines[action.pk] == runs[2].pk and picked.chosen[action.pk]
    with pytest.raises(ValidationFailed):
        group_matrix(group=group, baselines={action.pk: 999_999})


def test_the_api_gives_the_matrix_with_its_states_and_refuses_a_bad_baseline(api):
    group, action, _drama = _group()
    group_run, action_run = _train(group), _train(action)
    group_matrix_compute(group=group)

    body = api.get("/api/v1/scenarios/all/matrix/", {"baseline": f"action:{group_run.pk}"}).json()

    assert body["group"] == "all" and body["complete"] and body["split"]["protocol"] == "leave_last_out"
    states = {(cell["run"], cell["scenario"]): cell for cell in body["cells"]}
    assert states[(action_run.pk, "drama")]["state"] == "n/a"
    assert states[(action_run.pk, "action")]["change_vs_baseline"]["ndcg@10"] == pytest.approx(
        states[(action_run.pk, "action")]["metrics"]["ndcg@10"] - states[(group_run.pk, "action")]["metrics"]["ndcg@10"]
    )
    assert {m["scenario"]: m["baseline_picked"] for m in body["members"]} == {"action": True, "drama": False}
    bad = api.get("/api/v1/scenarios/all/matrix/", {"baseline": "comedy:1"})
    assert bad.status_code == 400 and "baseline" in bad.json()["errors"]
    alone = api.post("/api/v1/scenarios/action/matrix/compute/")  # a member is not a group
    assert alone.status_code == 400 and "scenario" in alone.json()["errors"]


def test_the_csv_has_every_metric_at_every_k(client, admin_user):
    group, _action, _ = _group()
    _train(group)
    group_matrix_compute(group=group)
    client.force_login(admin_user)

    rows = client.get("/scenarios/all/matrix/?export=matrix").content.decode().splitlines()

    metrics = {row.split(",")[8] for row in rows[1:]}
    assert {"ndcg@5", "ndcg@10", "recall@5", "map@10", "hit@10", "coverage@10"} <= metrics


def test_the_matrix_index_explains_groups_before_one_exists(client, admin_user):
    client.force_login(admin_user)
    empty = client.get("/matrix/").content.decode()
    assert "No group yet" in empty and "parent" in empty
    _group()
    listed = client.get("/matrix/").content.decode()
    assert 'href="/scenarios/all/matrix/"' in listed and "action, drama" in listed


def test_the_page_reloads_while_a_job_runs_and_stops_when_it_ends(client, admin_user):
    group, _, _ = _group()
    _train(group)
    client.force_login(admin_user)
    job = matrix_job_create(group=group, dispatch=False)

    assert 'http-equiv="refresh"' in client.get("/scenarios/all/matrix/").content.decode()
    assert matrix_job_execute(job_id=job.pk) == RunStatus.SUCCEEDED
    page = client.get("/scenarios/all/matrix/").content.decode()
    assert 'http-equiv="refresh"' not in page and "2 cells computed" in page


def test_the_matrix_command_computes_and_shows():
    group, _action, _ = _group()
    run = _train(group)
    out = StringIO()

    call_command("matrix", "compute", "all", "--inline", stdout=out, stderr=StringIO())
    assert json.loads(out.getvalue())["cells_computed"] == 2

    shown = StringIO()
    call_command("matrix", "show", "all", "--json", stdout=shown)
    cells = json.loads(shown.getvalue())["cells"]
    assert {(cell["run"], cell["scenario"], cell["state"]) for cell in cells} == {
        (run.pk, "action", "ok"),
        (run.pk, "drama", "ok"),
    }
    table = StringIO()
    call_command("matrix", "show", "all", "--metric", "recall@5", stdout=table)
    assert "recall@5" in table.getvalue() and f"{run.pk} ease (all)" in table.getvalue()


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_compute_through_the_api_returns_a_job_a_real_worker_finishes(celery_worker, api):
    group, _, _ = _group()
    _train(group)

    queued = api.post("/api/v1/scenarios/all/matrix/compute/")

    assert queued.status_code == 202 and queued.json()["status"] == "queued"
    job_id = queued.json()["id"]
    wait_until(lambda: api.get(f"/api/v1/matrix-jobs/{job_id}/").json()["status"] in ("succeeded", "failed"))
    job = api.get(f"/api/v1/matrix-jobs/{job_id}/").json()
    assert job["status"] == "succeeded" and job["cells_computed"] == 2, job["error"]
    assert api.get("/api/v1/scenarios/all/matrix/").json()["complete"]


def test_an_auto_run_is_na_and_a_blend_is_scored_like_any_model():
    group, action, drama = _group()
    ease, knn = _train(group), _train(group, "item_knn")
    # An auto run as its study leaves it: succeeded, pointing at the run it chose, with no model of its own.
    auto = TrainingRun.objects.create(
        scenario=group, algorithm="auto", status=RunStatus.SUCCEEDED, chosen_run=ease, metrics=ease.metrics,
        split=ease.split, seed=ease.seed,
    )  # fmt: skip
    blend = training_run_create(scenario=group, algorithm="blend", members=[ease, knn])
    assert training_run_execute(run_id=blend.pk, device="cpu") == RunStatus.SUCCEEDED

    made = group_matrix_compute(group=group)

    assert made == 6  # EASE, item-kNN and the blend on both members
    cell = group_matrix(group=group).cells[(auto.pk, action.pk)]
    assert cell.state == "n/a" and cell.reason == f"an auto run: the run it chose, run {ease.pk}, has its own row"
    assert 0.0 < group_matrix(group=group).cells[(blend.pk, drama.pk)].metrics["ndcg@10"] <= 1.0


def test_before_any_cell_is_computed_the_page_says_so_and_offers_no_empty_choice(client, admin_user):
    group, _, _ = _group()
    _train(group)
    client.force_login(admin_user)

    page = client.get("/scenarios/all/matrix/").content.decode()

    assert "not computed yet" in page and 'data-testid="matrix-compute"' in page
    assert not re.search(r'<select name="baseline">\s*</select>', page)
    assert not re.search(r'<select name="metric">\s*</select>', page)


def test_a_missing_cell_of_a_run_whose_model_retention_deleted_is_skipped_not_an_error():
    group, action, _ = _group()
    run = _train(group)
    group_matrix_compute(group=group)
    TrainingRun.objects.filter(pk=run.pk).update(artifact_path="")  # as the retention policy leaves it
    MatrixCell.objects.filter(run=run, scenario=action).delete()

    assert group_matrix_compute(group=group) == 0
    assert group_matrix(group=group).cells[(run.pk, action.pk)].state != "n/a"
