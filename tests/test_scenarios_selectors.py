"""The slice of events a scenario reads: its times are unix seconds, computed by the database."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import EndUser, Interaction, Item
from scenarios.models import Scenario
from scenarios.selectors import scenario_slice

pytestmark = pytest.mark.django_db

TIMES = (
    datetime(2024, 1, 1, 12, 30, 15, 999_999, tzinfo=UTC),  # a fraction of a second is cut off, as int() does
    datetime(1969, 12, 31, 23, 59, 58, 500_000, tzinfo=UTC),  # before 1970: cut towards 0 as well
    datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC),  # past 32-bit seconds
)


def _events() -> Scenario:
    user = EndUser.objects.create(external_id="u")
    for number, moment in enumerate(TIMES):
        item = Item.objects.create(external_id=f"i{number}")
        Interaction.objects.create(user=user, item=item, kind="view", value=1, occurred_at=moment)
    return Scenario.objects.create(slug="times", name="times")


def test_the_slice_gives_each_event_its_unix_seconds():
    scenario = _events()

    events = scenario_slice(scenario=scenario)

    assert events.timestamps.dtype.kind == "i"
    assert sorted(events.timestamps.tolist()) == sorted(int(moment.timestamp()) for moment in TIMES)


def test_the_database_turns_event_times_into_unix_seconds():
    """Building a datetime per event in Python took most of a slice read (three per run: queued, split, trained)."""
    scenario = _events()

    with CaptureQueriesContext(connection) as queries:
        scenario_slice(scenario=scenario)

    events_query = next(query["sql"] for query in queries if 'FROM "catalog_interaction"' in query["sql"])
    assert "EXTRACT(EPOCH FROM" in events_query.upper()
