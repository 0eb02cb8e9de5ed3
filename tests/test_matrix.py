"""The scenario × model matrix of a group covers every run and every member scenario."""

import pytest

from dashboards.services import account_create
from tests.test_groups import _group
from training.matrix import group_matrix, group_matrix_compute
from training.models import MatrixCell, RunStatus
from training.services import training_run_create, training_run_execute

pytestmark = pytest.mark.django_db


def _train(scenario, algorithm="ease"):
    run = training_run_create(scenario=scenario, algorithm=algorithm, params={})
    assert training_run_execute(run_id=run.pk, device="cpu") == RunStatus.SUCCEEDED
    return run


def test_the_matrix_covers_every_member_and_run(client):
    group, action, drama = _group()
    runs = [_train(group), _train(action), _train(drama), _train(group, "item_knn")]

    made = group_matrix_compute(group=group)

    assert made == len(runs) * 2 and MatrixCell.objects.count() == 8
    assert group_matrix_compute(group=group) == 0  # nothing left to compute
    matrix = group_matrix(group=group)
    assert [m.slug for m in matrix.members] == ["action", "drama"]
    for run in runs:
        for member in (action, drama):
            assert 0.0 <= matrix.cells[(run.pk, member.pk)]["ndcg@10"] <= 1.0
    assert matrix.baselines == {action.pk: runs[1].pk, drama.pk: runs[2].pk}

    account_create(username="vera", password="viewer-pass-123", role="viewer")
    client.login(username="vera", password="viewer-pass-123")
    page = client.get("/scenarios/all/matrix/").content.decode()
    assert 'id="matrix-plot"' in page and "drama" in page
    csv = client.get("/scenarios/all/matrix/?export=matrix").content.decode().splitlines()
    assert len(csv) == 1 + 8
