"""Reads for scenarios: the slice of events a scenario sees, and its size."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce
from operator import or_
from typing import Any

import numpy as np
from django.db.models import BigIntegerField, Count, Func, Max, Min, Q, QuerySet

from catalog.models import Interaction, Item
from scenarios.models import Scenario

# What a run records of its scenario: the slice and the evaluation protocol it was trained and measured on.
PROTOCOL_FIELDS = (
    "split",
    "validation_share",
    "test_share",
    "k_list",
    "objective",
    "min_value",
    "min_user_events",
    "min_item_events",
    "event_weights",
    "include_categories",
    "exclude_categories",
)


def scenario_protocol(*, scenario: Scenario) -> dict[str, Any]:
    """The scenario's slice and protocol settings as JSON values (:data:`PROTOCOL_FIELDS`)."""
    return {name: getattr(scenario, name) for name in PROTOCOL_FIELDS}


@dataclass(frozen=True)
class ScenarioSlice:
    """A scenario's events as parallel arrays (database ids), sorted by time then id.

    ``weights`` is the kind's weight from the scenario (1 when the scenario
    weights no kinds); ``values`` is the event's own value (e.g. a rating).
    """

    user_ids: np.ndarray
    item_ids: np.ndarray
    kinds: np.ndarray
    weights: np.ndarray
    values: np.ndarray
    timestamps: np.ndarray  # unix seconds, int64
    event_ids: np.ndarray  # Interaction ids, int64

    @property
    def n_events(self) -> int:
        return len(self.user_ids)

    def take(self, mask: np.ndarray) -> ScenarioSlice:
        return ScenarioSlice(
            user_ids=self.user_ids[mask],
            item_ids=self.item_ids[mask],
            kinds=self.kinds[mask],
            weights=self.weights[mask],
            values=self.values[mask],
            timestamps=self.timestamps[mask],
            event_ids=self.event_ids[mask],
        )


def scenario_item_ids(*, scenario: Scenario) -> np.ndarray:
    """Ids of the active items passing the scenario's category filter, sorted."""
    return np.fromiter(scenario_items(scenario=scenario).order_by("id").values_list("id", flat=True), dtype=np.int64)


def scenario_items(*, scenario: Scenario) -> QuerySet[Item]:
    """The active items in one of the scenario's included categories (any item when it names none) and in none of
    its excluded ones."""
    items = Item.objects.filter(is_active=True)
    if scenario.include_categories:
        items = items.filter(reduce(or_, (Q(categories__contains=[name]) for name in scenario.include_categories)))
    for name in scenario.exclude_categories or []:
        items = items.exclude(categories__contains=[name])
    return items


def scenario_interactions(*, scenario: Scenario) -> QuerySet[Interaction]:
    """The scenario's events before the item filter and the minimum-count (k-core) filter."""
    events = Interaction.objects.all()
    if scenario.event_weights:
        events = events.filter(kind__in=list(scenario.event_weights))
    if scenario.min_value is not None:
        events = events.filter(value__gte=scenario.min_value)
    return events.order_by("occurred_at", "id")


class UnixSeconds(Func):
    """Whole seconds since 1970 of a datetime column, cut towards 0 as ``int(moment.timestamp())`` does, computed
    by the database: building a Python datetime per event took most of the time of reading a slice."""

    output_field = BigIntegerField()
    template = "TRUNC(EXTRACT(EPOCH FROM %(expressions)s))::bigint"

    def as_sqlite(self, compiler, connection, **extra_context):
        # The embedded default stores "YYYY-MM-DD HH:MM:SS.ffffff" in UTC; strftime would round the fraction. The
        # doubled %% survives both the template and the driver's placeholder escaping as one %.
        template = "CAST(strftime('%%%%s', substr(%(expressions)s, 1, 19)) AS INTEGER)"
        return super().as_sql(compiler, connection, template=template, **extra_context)


def scenario_slice(*, scenario: Scenario) -> ScenarioSlice:
    """Every event the scenario trains and evaluates on, with its filters applied."""
    interactions = scenario_interactions(scenario=scenario).annotate(unix_seconds=UnixSeconds("occurred_at"))
    rows = list(interactions.values_list("user_id", "item_id", "kind", "value", "unix_seconds", "id"))
    events = _slice_from_rows(rows, scenario.event_weights or {})
    events = events.take(np.isin(events.item_ids, scenario_item_ids(scenario=scenario)))
    mask = k_core_mask(
        events.user_ids, events.item_ids, min_user=scenario.min_user_events, min_item=scenario.min_item_events
    )
    return events.take(mask)


def scenario_slice_size(*, scenario: Scenario) -> dict:
    """Users (and those with 2 or more events), items and events in the scenario's slice, and its time range.

    The database counts them where no minimum count applies; a minimum count (the k-core filter, repeated until
    nothing changes) needs the events themselves."""
    if scenario.min_user_events <= 1 and scenario.min_item_events <= 1:
        return _size_counted(scenario)
    events = scenario_slice(scenario=scenario)
    if events.n_events == 0:
        return {"users": 0, "repeat_users": 0, "items": 0, "events": 0, **events_time_range(events.timestamps)}
    _, events_per_user = np.unique(events.user_ids, return_counts=True)
    return {
        "users": int(events_per_user.size),
        "repeat_users": int((events_per_user >= 2).sum()),
        "items": int(np.unique(events.item_ids).size),
        "events": events.n_events,
        **events_time_range(events.timestamps),
    }


def _size_counted(scenario: Scenario) -> dict:
    events = scenario_interactions(scenario=scenario).order_by().filter(item__in=scenario_items(scenario=scenario))
    seconds = UnixSeconds("occurred_at")
    totals = events.aggregate(
        events=Count("id"),
        users=Count("user", distinct=True),
        items=Count("item", distinct=True),
        first=Min(seconds),
        last=Max(seconds),
    )
    repeat_users = events.values("user").annotate(events=Count("id")).filter(events__gte=2).count()
    moments = np.array([totals["first"], totals["last"]] if totals["events"] else [], dtype=np.int64)
    return {
        "users": totals["users"],
        "repeat_users": repeat_users,
        "items": totals["items"],
        "events": totals["events"],
        **events_time_range(moments),
    }


def events_time_range(timestamps: np.ndarray) -> dict[str, str | None]:
    """``first_event_at`` and ``last_event_at`` (ISO 8601, UTC) of ``(n_events,)`` unix seconds; None when empty."""
    if len(timestamps) == 0:
        return {"first_event_at": None, "last_event_at": None}
    first, last = (
        datetime.fromtimestamp(int(moment), tz=UTC).isoformat() for moment in (timestamps.min(), timestamps.max())
    )
    return {"first_event_at": first, "last_event_at": last}


def k_core_mask(user_ids: np.ndarray, item_ids: np.ndarray, *, min_user: int, min_item: int) -> np.ndarray:
    """Boolean mask keeping events whose user and item each keep at least the minimum number of events.

    Dropping a sparse item can push a user under the minimum (and back), so
    the filter repeats until nothing changes.
    """
    keep = np.ones(len(user_ids), dtype=bool)
    if min_user <= 1 and min_item <= 1:
        return keep
    while True:
        user_counts = _counts_of(user_ids, keep)
        item_counts = _counts_of(item_ids, keep)
        new_keep = keep & (user_counts >= min_user) & (item_counts >= min_item)
        if new_keep.sum() == keep.sum():
            return new_keep
        keep = new_keep


def _counts_of(ids: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """For each event, how many kept events share its id."""
    _, inverse, _ = np.unique(ids, return_inverse=True, return_counts=True)
    counts = np.bincount(inverse, weights=keep.astype(np.float64))
    return counts[inverse]


def _slice_from_rows(rows: list[tuple], event_weights: dict[str, float]) -> ScenarioSlice:
    if not rows:
        empty_int = np.zeros(0, dtype=np.int64)
        empty_float = np.zeros(0, dtype=np.float32)
        return ScenarioSlice(
            empty_int, empty_int, np.zeros(0, dtype=object), empty_float, empty_float, empty_int, empty_int
        )
    user_ids, item_ids, kinds, values, times, event_ids = zip(*rows, strict=True)
    kinds_array = np.asarray(kinds, dtype=object)
    weights = np.asarray([float(event_weights.get(kind, 1.0)) for kind in kinds], dtype=np.float32)
    return ScenarioSlice(
        user_ids=np.asarray(user_ids, dtype=np.int64),
        item_ids=np.asarray(item_ids, dtype=np.int64),
        kinds=kinds_array,
        weights=weights,
        values=np.asarray(values, dtype=np.float32),
        timestamps=np.asarray(times, dtype=np.int64),
        event_ids=np.asarray(event_ids, dtype=np.int64),
    )
