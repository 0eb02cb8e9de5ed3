"""The demo: three scenarios in a group, each trained on the real worker (a baseline and a sequential model),
and the best run of each promoted with a reason."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from scenarios.models import Scenario
from training.models import Promotion, RunStatus, TrainingRun

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]


def test_the_demo_trains_a_baseline_and_a_sequential_model_per_scenario_and_promotes_the_best(celery_worker):
    setup = StringIO()
    call_command("demo_setup", data=Path("/nonexistent/ml-100k"), stdout=setup)  # generated data
    out = StringIO()

    call_command("demo_train", "--timeout", "300", stdout=out)

    group = Scenario.objects.get(slug="movies")
    assert sorted(group.members.values_list("slug", flat=True)) == ["action-thriller", "comedy-romance"]
    for scenario in Scenario.objects.all():
        runs = TrainingRun.objects.filter(scenario=scenario)
        assert sorted(runs.values_list("algorithm", flat=True)) == sorted([scenario.algorithm, "sasrec"])
        assert set(runs.values_list("status", flat=True)) == {RunStatus.SUCCEEDED}
        best = max(runs, key=lambda run: run.metrics["ndcg@10"])
        scenario.refresh_from_db()
        assert scenario.live_run_id == best.pk
        assert Promotion.objects.filter(scenario=scenario).first().reason.startswith("demo: best ndcg@10")
    assert "every demo run has finished" in out.getvalue() and "matrix of movies" in out.getvalue()
    assert "Start here" in setup.getvalue() and "/scenarios/movies/browse/" in setup.getvalue()

    again = StringIO()
    call_command("demo_train", stdout=again)  # a second demo start queues nothing
    assert "nothing queued" in again.getvalue() and TrainingRun.objects.count() == 6
