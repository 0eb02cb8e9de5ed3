"""The Celery wiring end to end: API → on_commit → Redis → a real worker → PostgreSQL."""

import pytest
from django.db import transaction

from catalog.models import EndUser, Interaction, Item
from recsys_site.celery import app
from scenarios.dispatch import scenario_slice_refresh_dispatch
from scenarios.models import Scenario
from tests.conftest import wait_until

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]


def _two_events() -> None:
    item = Item.objects.create(external_id="i1")
    for name in ("u1", "u2"):
        Interaction.objects.create(
            user=EndUser.objects.create(external_id=name), item=item, occurred_at="2024-01-01T00:00:00Z"
        )


def test_slice_refresh_round_trips_through_a_real_worker(celery_worker, api):
    _two_events()
    api.post("/api/v1/scenarios/", {"slug": "all", "name": "All"}, format="json")

    response = api.post("/api/v1/scenarios/all/slice/refresh/")

    assert response.status_code == 202
    stats = wait_until(lambda: Scenario.objects.get(slug="all").slice_stats, timeout=60)
    assert (stats["users"], stats["items"], stats["events"]) == (2, 1, 2)


def _processed(task_name: str) -> int:
    stats = app.control.inspect(timeout=2).stats() or {}
    return sum(entry.get("total", {}).get(task_name, 0) for entry in stats.values())


def test_dispatch_inside_a_rolled_back_transaction_sends_nothing(celery_worker):
    scenario = Scenario.objects.create(slug="ghost", name="Ghost")
    before = _processed("scenarios.slice_refresh")

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        scenario_slice_refresh_dispatch(scenario_id=scenario.pk)
        raise Rollback
    # One committed dispatch after it: the queue is FIFO with one worker, so once this one is
    # done, a task sent by the rolled-back block would have been processed too.
    with transaction.atomic():
        scenario_slice_refresh_dispatch(scenario_id=scenario.pk)

    wait_until(lambda: Scenario.objects.get(pk=scenario.pk).slice_computed_at, timeout=60)
    wait_until(lambda: _processed("scenarios.slice_refresh") > before, timeout=10)
    assert _processed("scenarios.slice_refresh") - before == 1
