"""The slice of events a scenario reads: its times are unix seconds, computed by the database."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import EndUser, Interaction, Item
from scenarios.models import Scenario
from scenarios.selectors import scenario_slice, scenario_slice_size

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


def _filtered_catalogue() -> Scenario:
    """Events that each filter of the scenario below keeps or drops; it keeps three, of two users on one item."""
    drama = Item.objects.create(external_id="d1", categories=["Drama"])
    romance = Item.objects.create(external_id="d2", categories=["Drama", "Romance"])
    comedy = Item.objects.create(external_id="c1", categories=["Comedy"])
    retired = Item.objects.create(external_id="d3", categories=["Drama"], is_active=False)
    plain = Item.objects.create(external_id="n1")
    start = datetime(2024, 1, 1, 12, 0, 0, 900_000, tzinfo=UTC)
    rows = [
        ("u0", drama, "rating", 5),
        ("u0", drama, "view", 3),
        ("u1", drama, "rating", 4),
        ("u1", romance, "rating", 5),  # an excluded category
        ("u1", comedy, "rating", 5),  # not an included category
        ("u2", drama, "rating", 2),  # below the minimum value
        ("u2", retired, "rating", 5),  # an inactive item
        ("u3", drama, "click", 5),  # a kind the scenario does not weigh
        ("u3", plain, "rating", 5),  # no category
    ]
    for hours, (user, item, kind, value) in enumerate(rows):
        user, _ = EndUser.objects.get_or_create(external_id=user)
        Interaction.objects.create(
            user=user, item=item, kind=kind, value=value, occurred_at=start + timedelta(hours=hours)
        )
    return Scenario.objects.create(
        slug="drama",
        name="drama",
        include_categories=["Drama"],
        exclude_categories=["Romance"],
        event_weights={"rating": 1.0, "view": 0.5},
        min_value=3,
    )


def test_the_database_counts_a_slice_without_minimum_counts_reading_no_event():
    scenario = _filtered_catalogue()

    with CaptureQueriesContext(connection) as queries:
        size = scenario_slice_size(scenario=scenario)

    assert size == {
        "users": 2,
        "repeat_users": 1,
        "items": 1,
        "events": 3,
        "first_event_at": "2024-01-01T12:00:00+00:00",
        "last_event_at": "2024-01-01T14:00:00+00:00",
    }
    assert all("COUNT(" in query["sql"] for query in queries if "catalog_interaction" in query["sql"])
    assert len(scenario_slice(scenario=scenario).event_ids) == size["events"]


def test_a_slice_with_minimum_counts_applies_the_same_filters():
    scenario = _filtered_catalogue()
    scenario.min_user_events = 2

    size = scenario_slice_size(scenario=scenario)

    assert (size["users"], size["repeat_users"], size["items"], size["events"]) == (1, 1, 1, 2)
    assert size["last_event_at"] == "2024-01-01T13:00:00+00:00"
