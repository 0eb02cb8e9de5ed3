"""Small data built in code for tests."""

from datetime import UTC, datetime, timedelta

import numpy as np

from catalog.services import EventRow, ItemRow, interactions_ingest, items_upsert
from scenarios.models import Scenario
from scenarios.services import scenario_create

START = datetime(2024, 1, 1, tzinfo=UTC)


def clustered_catalog(*, users: int = 40, items: int = 30, per_user: int = 10, seed: int = 0) -> None:
    """Users in three taste groups, each mostly choosing items of its own third of the catalogue."""
    rng = np.random.default_rng(seed)
    groups = ("Action", "Comedy", "Drama")
    items_upsert(
        items=[
            ItemRow(external_id=f"i{n}", title=f"Item {n}", categories=[groups[n * 3 // items]]) for n in range(items)
        ]
    )
    rows = []
    for user in range(users):
        group = user % 3
        own = np.arange(group * items // 3, (group + 1) * items // 3)
        chosen = rng.choice(own, size=min(per_user - 2, len(own)), replace=False).tolist()
        chosen += rng.choice(items, size=2, replace=False).tolist()
        for order, item in enumerate(dict.fromkeys(chosen)):
            rows.append(
                EventRow(
                    user=f"u{user}",
                    item=f"i{item}",
                    kind="rating",
                    value=float(rng.integers(3, 6)),
                    occurred_at=START + timedelta(hours=user * 50 + order),
                    event_id=f"t{user}-{item}",
                )
            )
    interactions_ingest(events=rows)


def scenario(**overrides) -> Scenario:
    return scenario_create(data={"slug": "movies", "name": "Movies", "algorithm": "popularity", **overrides})
