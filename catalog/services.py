"""Writes to the catalog: bulk ingestion of events, items and end users.

Every write here is all-or-nothing (one transaction) and idempotent: events
carry an optional ``event_id`` and a replay of the same ids adds nothing;
items and users are keyed by their external id.

On PostgreSQL, rows travel through ``COPY`` into a temporary staging table;
unknown users and items are created from it and the events merged, each with one
``INSERT … SELECT … ON CONFLICT DO NOTHING``; that is several times faster than
ORM inserts. Other databases (the SQLite demo fallback) use
``bulk_create``. Items created or changed bump the catalogue version
(:mod:`recsys_site.serving_version`) once committed, so serving sees them at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from catalog.models import EndUser, Interaction, Item
from recsys_site.errors import ValidationFailed
from recsys_site.serving_version import catalog_version_bump


@dataclass(frozen=True)
class EventRow:
    """One event to ingest, with users and items named by external id."""

    user: str
    item: str
    occurred_at: datetime
    kind: str = "view"
    value: float = 1.0
    context: dict = field(default_factory=dict)
    event_id: str | None = None


@dataclass(frozen=True)
class ItemRow:
    external_id: str
    title: str = ""
    description: str = ""
    categories: list[str] = field(default_factory=list)
    attributes: dict = field(default_factory=dict)


@dataclass(frozen=True)
class EndUserRow:
    external_id: str
    attributes: dict = field(default_factory=dict)


@dataclass
class IngestResult:
    """Counts of one ingestion. ``duplicates`` are events whose ``event_id`` was already stored."""

    received: int = 0
    created: int = 0
    duplicates: int = 0
    users_created: int = 0
    items_created: int = 0

    def add(self, other: IngestResult) -> None:
        for name in ("received", "created", "duplicates", "users_created", "items_created"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class UpsertResult:
    received: int = 0
    created: int = 0
    updated: int = 0


def interactions_ingest(*, events: Sequence[EventRow], create_missing: bool = True) -> IngestResult:
    """Store ``events`` in one transaction.

    With ``create_missing`` unknown users and items are created (items with an
    empty title); without it, an unknown id raises :class:`ValidationFailed`
    naming each offending event by its index, and nothing is written.
    Events repeating an ``event_id`` (stored already or earlier in the batch)
    are counted as duplicates and skipped.
    """
    result = IngestResult(received=len(events))
    if not events:
        return result
    with transaction.atomic():
        if not create_missing:
            _reject_unknown(events)
        if connection.vendor == "postgresql":
            result.created, result.users_created, result.items_created = _copy_events(events, create_missing)
        else:
            if create_missing:
                result.users_created = _create_missing_users({event.user for event in events})
                result.items_created = _create_missing_items({event.item for event in events})
            result.created = _bulk_create_events(events)
        if result.items_created:
            catalog_version_bump()
    result.duplicates = result.received - result.created
    return result


def items_upsert(*, items: Sequence[ItemRow], update_existing: bool = True) -> UpsertResult:
    """Create items by external id; update title, description, categories and attributes of existing ones."""
    result = UpsertResult(received=len(items))
    latest = {row.external_id: row for row in items}  # a later row for the same id wins
    with transaction.atomic():
        existing = {item.external_id: item for item in Item.objects.filter(external_id__in=latest.keys())}
        new_items = [
            Item(
                external_id=row.external_id,
                title=row.title,
                description=row.description,
                categories=row.categories,
                attributes=row.attributes,
            )
            for external_id, row in latest.items()
            if external_id not in existing
        ]
        Item.objects.bulk_create(new_items, batch_size=5000)
        result.created = len(new_items)
        if update_existing:
            result.updated = _update_changed_items(existing, latest)
        if result.created or result.updated:
            catalog_version_bump()
    return result


def items_category_add(*, external_ids: Sequence[str], category: str) -> UpsertResult:
    """Give each named item ``category``: stored items lacking it get it appended, missing items are created."""
    result = UpsertResult(received=len(external_ids))
    with transaction.atomic():
        existing = {item.external_id: item for item in Item.objects.filter(external_id__in=external_ids)}
        lacking = [item for item in existing.values() if category not in item.categories]
        for item in lacking:
            item.categories = [*item.categories, category]
            item.updated_at = timezone.now()
        Item.objects.bulk_update(lacking, ["categories", "updated_at"], batch_size=2000)
        missing = [
            Item(external_id=external_id, categories=[category])
            for external_id in external_ids
            if external_id not in existing
        ]
        Item.objects.bulk_create(missing, batch_size=5000)
        if missing or lacking:
            catalog_version_bump()
    result.created, result.updated = len(missing), len(lacking)
    return result


def end_users_upsert(*, users: Sequence[EndUserRow], update_existing: bool = True) -> UpsertResult:
    result = UpsertResult(received=len(users))
    latest = {row.external_id: row for row in users}
    with transaction.atomic():
        existing = {user.external_id: user for user in EndUser.objects.filter(external_id__in=latest.keys())}
        new_users = [
            EndUser(external_id=external_id, attributes=row.attributes)
            for external_id, row in latest.items()
            if external_id not in existing
        ]
        EndUser.objects.bulk_create(new_users, batch_size=5000)
        result.created = len(new_users)
        if update_existing:
            changed = [
                user for external_id, user in existing.items() if user.attributes != latest[external_id].attributes
            ]
            for user in changed:
                user.attributes = latest[user.external_id].attributes
                user.updated_at = timezone.now()
            EndUser.objects.bulk_update(changed, ["attributes", "updated_at"], batch_size=2000)
            result.updated = len(changed)
    return result


def _update_changed_items(existing: dict[str, Item], latest: dict[str, ItemRow]) -> int:
    fields = ("title", "description", "categories", "attributes")
    changed = []
    for external_id, item in existing.items():
        row = latest[external_id]
        if any(getattr(item, name) != getattr(row, name) for name in fields):
            for name in fields:
                setattr(item, name, getattr(row, name))
            item.updated_at = timezone.now()
            changed.append(item)
    Item.objects.bulk_update(changed, [*fields, "updated_at"], batch_size=2000)
    return len(changed)


def _create_missing_users(external_ids: set[str]) -> int:
    known = set(EndUser.objects.filter(external_id__in=external_ids).values_list("external_id", flat=True))
    missing = [EndUser(external_id=external_id) for external_id in sorted(external_ids - known)]
    EndUser.objects.bulk_create(missing, batch_size=5000, ignore_conflicts=True)
    return len(missing)


def _create_missing_items(external_ids: set[str]) -> int:
    known = set(Item.objects.filter(external_id__in=external_ids).values_list("external_id", flat=True))
    missing = [Item(external_id=external_id) for external_id in sorted(external_ids - known)]
    Item.objects.bulk_create(missing, batch_size=5000, ignore_conflicts=True)
    return len(missing)


def _reject_unknown(events: Sequence[EventRow]) -> None:
    users = set(EndUser.objects.filter(external_id__in={e.user for e in events}).values_list("external_id", flat=True))
    items = set(Item.objects.filter(external_id__in={e.item for e in events}).values_list("external_id", flat=True))
    errors: dict[str, dict[str, list[str]]] = {}
    for index, event in enumerate(events):
        problems = {}
        if event.user not in users:
            problems["user"] = [f"unknown user {event.user!r}"]
        if event.item not in items:
            problems["item"] = [f"unknown item {event.item!r}"]
        if problems:
            errors[str(index)] = problems
    if errors:
        raise ValidationFailed(f"{len(errors)} events name unknown users or items", detail={"errors": errors})


_STAGING_COLUMNS = ("user_external_id", "item_external_id", "kind", "value", "occurred_at", "context", "event_id")


# Unknown ids become users and items with the models' defaults, in id order (concurrent batches lock alike).
# The anti-join leaves only the ids not stored yet (usually none): proposing every id of the batch to
# ON CONFLICT costs a speculative insertion each. ON CONFLICT stays for a concurrent batch creating the same id.
_CREATE_MISSING_USERS = (
    f"INSERT INTO {EndUser._meta.db_table} (external_id, attributes, created_at, updated_at)"
    " SELECT DISTINCT user_external_id, '{}'::jsonb, now(), now() FROM ingest_staging s"
    f" WHERE NOT EXISTS (SELECT FROM {EndUser._meta.db_table} u WHERE u.external_id = s.user_external_id)"
    " ORDER BY 1 ON CONFLICT (external_id) DO NOTHING"
)
_CREATE_MISSING_ITEMS = (
    f"INSERT INTO {Item._meta.db_table}"
    " (external_id, title, description, categories, attributes, is_active, created_at, updated_at)"
    " SELECT DISTINCT item_external_id, '', '', '[]'::jsonb, '{}'::jsonb, true, now(), now() FROM ingest_staging s"
    f" WHERE NOT EXISTS (SELECT FROM {Item._meta.db_table} i WHERE i.external_id = s.item_external_id)"
    " ORDER BY 1 ON CONFLICT (external_id) DO NOTHING"
)


def _copy_events(events: Sequence[EventRow], create_missing: bool) -> tuple[int, int, int]:
    """COPY into a temporary table, create missing users and items from it, then merge.

    Returns the events inserted and the users and items created.
    """
    interaction, user, item = Interaction._meta.db_table, EndUser._meta.db_table, Item._meta.db_table
    users_created = items_created = 0
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS ingest_staging ("
            " position bigint, user_external_id text, item_external_id text, kind text, value double precision,"
            " occurred_at timestamptz, context jsonb, event_id text) ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY ingest_staging (position, {', '.join(_STAGING_COLUMNS)}) FROM STDIN") as copy:
            for position, event in enumerate(events):
                copy.write_row(_staging_row(position, event))
        if create_missing:
            cursor.execute(_CREATE_MISSING_USERS)
            users_created = cursor.rowcount
            cursor.execute(_CREATE_MISSING_ITEMS)
            items_created = cursor.rowcount
        # DISTINCT ON keeps the first of several events sharing an event_id within the batch. An id-less event
        # is keyed by (NULL, its position): unique, and never equal to a client id such as "0". The ids are grouped
        # in byte order (any order groups them; the database's collation sorts text slower). A batch whose ids
        # are all distinct, the usual one, needs no grouping.
        ids = [event.event_id for event in events if event.event_id is not None]
        staged = (
            "ingest_staging"
            if len(set(ids)) == len(ids)
            else '(SELECT DISTINCT ON (event_id COLLATE "C", CASE WHEN event_id IS NULL THEN position END) *'
            "  FROM ingest_staging"
            '  ORDER BY event_id COLLATE "C", CASE WHEN event_id IS NULL THEN position END, position)'
        )
        cursor.execute(
            f"INSERT INTO {interaction} (user_id, item_id, kind, value, occurred_at, context, event_id, created_at)"
            " SELECT u.id, i.id, s.kind, s.value, s.occurred_at, s.context, s.event_id, now()"
            f" FROM {staged} s"
            f" JOIN {user} u ON u.external_id = s.user_external_id"
            f" JOIN {item} i ON i.external_id = s.item_external_id"
            " ORDER BY s.position"
            " ON CONFLICT (event_id) DO NOTHING"
        )
        inserted = cursor.rowcount
        cursor.execute("TRUNCATE ingest_staging")
    return inserted, users_created, items_created


def _staging_row(position: int, event: EventRow) -> tuple:
    return (
        position,
        event.user,
        event.item,
        event.kind,
        event.value,
        event.occurred_at,
        json.dumps(event.context) if event.context else "{}",
        event.event_id,
    )


def _bulk_create_events(events: Sequence[EventRow]) -> int:
    users = dict(EndUser.objects.filter(external_id__in={e.user for e in events}).values_list("external_id", "id"))
    items = dict(Item.objects.filter(external_id__in={e.item for e in events}).values_list("external_id", "id"))
    ids = {e.event_id for e in events if e.event_id}
    seen = set(Interaction.objects.filter(event_id__in=ids).values_list("event_id", flat=True))
    rows = []
    for event in events:
        if event.event_id:
            if event.event_id in seen:
                continue
            seen.add(event.event_id)
        rows.append(
            Interaction(
                user_id=users[event.user],
                item_id=items[event.item],
                kind=event.kind,
                value=event.value,
                occurred_at=event.occurred_at,
                context=event.context,
                event_id=event.event_id,
            )
        )
    Interaction.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def chunked(rows: Iterable, size: int) -> Iterator[list]:
    """Yield lists of at most ``size`` rows."""
    batch: list = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
