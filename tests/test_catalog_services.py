"""Ingestion identity: which events of a batch are stored, checked against a plain model of the rule."""

import threading
import time
from datetime import UTC, datetime

import pytest
from django.db import connection, connections, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.models import Interaction
from catalog.services import EventRow, interactions_ingest

pytestmark = pytest.mark.django_db
MOMENT = datetime(2024, 3, 1, tzinfo=UTC)


def _event(event_id: str | None, *, user: str = "u1", item: str = "i1") -> EventRow:
    return EventRow(user=user, item=item, occurred_at=MOMENT, event_id=event_id)


def test_a_client_id_that_looks_like_a_batch_position_is_a_different_event():
    result = interactions_ingest(events=[_event(None), _event("0")])

    assert (result.received, result.created, result.duplicates) == (2, 2, 0)
    assert sorted(Interaction.objects.values_list("event_id", flat=True), key=str) == ["0", None]


def test_events_without_an_id_are_never_duplicates_of_each_other():
    result = interactions_ingest(events=[_event(None), _event(None), _event("1"), _event("1")])

    assert (result.created, result.duplicates) == (3, 1)


def _stored_by_the_rule(batches: list[list[str | None]]) -> int:
    """The rule: an id-less event is always new; an event with an id is new unless that id was seen before."""
    seen: set[str] = set()
    stored = 0
    for batch in batches:
        for event_id in batch:
            if event_id is None:
                stored += 1
            elif event_id not in seen:
                seen.add(event_id)
                stored += 1
    return stored


# Ids drawn from a small alphabet (digits included, like batch positions) so repeats and near-collisions are common.
event_ids = st.one_of(st.none(), st.sampled_from(["0", "1", "2", "10", "a", "0 ", "x:1"]))
batches = st.lists(st.lists(event_ids, min_size=1, max_size=8), min_size=1, max_size=3)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=batches)
def test_stored_events_follow_the_identity_rule(batches):
    with transaction.atomic():
        for batch in batches:
            interactions_ingest(events=[_event(event_id, user=f"u{n}") for n, event_id in enumerate(batch)])
        stored = Interaction.objects.count()
        transaction.set_rollback(True)  # each example starts from an empty table

    assert stored == _stored_by_the_rule(batches)


def _wait_for_a_backend_waiting_on_a_lock(timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError("no ingestion waited for the other")


@pytest.mark.django_db(transaction=True)
def test_two_batches_storing_the_same_new_event_id_at_once_store_it_once():
    interactions_ingest(events=[_event(None)])  # the user and item exist: the batches meet only on the event id
    first_stored, release = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                results["first"] = interactions_ingest(events=[_event("e1")])
                first_stored.set()
                release.wait(30)
        finally:
            connections.close_all()

    def second() -> None:
        try:
            results["second"] = interactions_ingest(events=[_event("e1"), _event("e2")])
        except Exception as error:
            results["second"] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert first_stored.wait(30)
    threads[1].start()
    _wait_for_a_backend_waiting_on_a_lock()  # the second batch waits on the first's uncommitted e1
    release.set()
    for thread in threads:
        thread.join(30)

    second_result = results["second"]
    assert not isinstance(second_result, Exception), second_result
    assert (second_result.created, second_result.duplicates) == (1, 1)
    assert sorted(Interaction.objects.exclude(event_id=None).values_list("event_id", flat=True)) == ["e1", "e2"]
