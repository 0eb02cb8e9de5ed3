"""Reads of the catalog: counts, data-overview aggregates, a user's history, searches of users and items."""

from __future__ import annotations

import random

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Length, TruncDate

from catalog.models import EndUser, Interaction, Item


def catalog_counts() -> dict[str, int]:
    """Rows in each catalog table."""
    return {
        "items": Item.objects.count(),
        "end_users": EndUser.objects.count(),
        "interactions": Interaction.objects.count(),
    }


def catalog_category_names() -> set[str]:
    """Every category some active item has (what a scenario's item filter can match)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT DISTINCT jsonb_array_elements_text(categories) FROM {Item._meta.db_table} "
                "WHERE is_active AND jsonb_typeof(categories) = 'array'"
            )
            return {row[0] for row in cursor.fetchall()}
    names: set[str] = set()
    for categories in Item.objects.filter(is_active=True).values_list("categories", flat=True):
        names.update(category for category in categories or [] if isinstance(category, str))
    return names


def events_per_day_and_kind() -> tuple[list, dict[str, list[int]]]:
    """Days (ascending) and, per kind, the number of events on each day (one aggregate query)."""
    rows = (
        Interaction.objects.annotate(day=TruncDate("occurred_at"))
        .values("day", "kind")
        .annotate(events=Count("id"))
        .order_by("day")
    )
    days: list = []
    counts: dict[tuple, int] = {}
    for row in rows:
        if not days or days[-1] != row["day"]:
            days.append(row["day"])
        counts[(row["day"], row["kind"])] = row["events"]
    kinds = sorted({kind for _, kind in counts})
    return days, {kind: [counts.get((day, kind), 0) for day in days] for kind in kinds}


def item_event_counts() -> list[int]:
    """Events per item (items with at least one event)."""
    return list(Interaction.objects.values("item_id").annotate(n=Count("id")).values_list("n", flat=True))


def user_event_counts() -> list[int]:
    """Events per end user (users with at least one event)."""
    return list(Interaction.objects.values("user_id").annotate(n=Count("id")).values_list("n", flat=True))


def user_history(*, user: EndUser, limit: int = 50) -> QuerySet[Interaction]:
    """A user's most recent events, newest first, with their items."""
    return Interaction.objects.filter(user=user).select_related("item").order_by("-occurred_at", "-id")[:limit]


def users_search(*, query: str, limit: int = 20) -> list[tuple[EndUser, int]]:
    """End users whose external id contains ``query`` (exact match first), with their event counts."""
    found = (
        EndUser.objects.filter(external_id__icontains=query)
        .annotate(events=Count("interactions"))
        .order_by(Length("external_id"), "external_id")[:limit]
    )
    return [(user, user.events) for user in found]


def items_search(*, query: str, limit: int = 20) -> list[tuple[Item, int]]:
    """Items whose external id or title contains ``query``, with their event counts, most events first."""
    found = (
        Item.objects.filter(Q(external_id__icontains=query) | Q(title__icontains=query))
        .annotate(events=Count("interactions"))
        .order_by("-events", "external_id")[:limit]
    )
    return [(item, item.events) for item in found]


def item_recent_events(*, item: Item, limit: int = 30) -> QuerySet[Interaction]:
    """An item's most recent events, newest first, with their users."""
    return Interaction.objects.filter(item=item).select_related("user").order_by("-occurred_at", "-id")[:limit]


def event_count(*, user: EndUser | None = None, item: Item | None = None) -> int:
    events = Interaction.objects.all()
    if user is not None:
        events = events.filter(user=user)
    if item is not None:
        events = events.filter(item=item)
    return events.count()


def random_active_user(*, seed: int | None = None) -> EndUser | None:
    """A user with at least one event, drawn uniformly by a random offset (no ORDER BY random() over the table)."""
    active = EndUser.objects.filter(Exists(Interaction.objects.filter(user=OuterRef("pk")))).order_by("pk")
    total = active.count()
    if total == 0:
        return None
    return active[random.Random(seed).randrange(total)]


def catalog_unknown_items(*, external_ids: set[str]) -> set[str]:
    """The external ids among ``external_ids`` that no item has."""
    return external_ids - set(Item.objects.filter(external_id__in=external_ids).values_list("external_id", flat=True))
