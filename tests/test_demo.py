"""The demo: three scenarios in a group and a rating scenario, each trained on the real worker (a baseline and a
second model), the best run of each promoted with a reason, an auto run's choice and a small study."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from scenarios.models import Objective, Scenario
from tests.conftest import wait_until
from training.models import FINISHED, MatrixJob, Promotion, RunStatus, Study, StudyStatus, TrainingRun

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]


def test_the_demo_trains_every_kind_of_run_and_promotes_the_best_of_each_scenario(celery_worker):
    setup = StringIO()
    call_command("demo_setup", data=Path("/nonexistent/ml-100k"), stdout=setup)  # generated data
    out = StringIO()

    call_command("demo_train", "--timeout", "600", stdout=out)

    group = Scenario.objects.get(slug="movies")
    assert sorted(group.members.values_list("slug", flat=True)) == ["action-thriller", "comedy-romance"]
    for scenario in Scenario.objects.all():
        own = TrainingRun.objects.filter(scenario=scenario, study__isnull=True).exclude(algorithm="auto")
        second = "neural_mf" if scenario.objective == Objective.RATING else "sasrec"
        assert sorted(own.values_list("algorithm", flat=True)) == sorted([scenario.algorithm, second])
        assert set(own.values_list("status", flat=True)) == {RunStatus.SUCCEEDED}
        scenario.refresh_from_db()
        assert Promotion.objects.filter(scenario=scenario).first().reason.startswith("demo: best ")
    ratings = Scenario.objects.get(slug="ratings")
    rated = ratings.runs.filter(status=RunStatus.SUCCEEDED)
    assert ratings.live_run == min(rated, key=lambda run: run.metrics["rmse"])
    auto = TrainingRun.objects.get(algorithm="auto")
    assert auto.scenario == group and auto.status == RunStatus.SUCCEEDED and auto.chosen_run is not None
    study = Study.objects.get(auto_run__isnull=True)
    assert study.scenario.slug == "action-thriller" and study.status == StudyStatus.SUCCEEDED
    assert study.trials.filter(status=RunStatus.SUCCEEDED).count() == 4
    assert "every demo run has finished" in out.getvalue() and "matrix of movies" in out.getvalue()
    job = wait_until(lambda: MatrixJob.objects.filter(group=group, status__in=FINISHED).first(), timeout=300)
    assert job.status == RunStatus.SUCCEEDED and job.cells_computed > 0, job.error  # the auto run is n/a, not an error
    assert f"/studies/{study.pk}/" in out.getvalue()
    assert "Start here" in setup.getvalue() and "/scenarios/ratings/" in setup.getvalue()

    runs = TrainingRun.objects.count()
    again = StringIO()
    call_command("demo_train", stdout=again)  # a second demo start queues nothing
    assert "nothing queued" in again.getvalue() and TrainingRun.objects.count() == runs
    assert Study.objects.filter(auto_run__isnull=True).count() == 1
