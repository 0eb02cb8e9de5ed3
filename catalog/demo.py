"""A small synthetic catalogue for demos on machines without MovieLens.

Users have a taste for two of eight genres; they mostly pick popular items of
those genres, so every model in the registry has some structure to find.
Rows go through the same ingestion services as the API and the importers.
"""

from datetime import UTC, datetime, timedelta

import numpy as np

from catalog.services import EventRow, IngestResult, ItemRow, chunked, interactions_ingest, items_upsert

GENRES = ("Action", "Comedy", "Drama", "Romance", "Sci-Fi", "Thriller", "Documentary", "Animation")
START = datetime(2024, 1, 1, tzinfo=UTC)


def demo_dataset_generate(*, users: int = 300, items: int = 240, events: int = 9000, seed: int = 7) -> IngestResult:
    """Create ``items`` items and ``events`` rating events (deterministic for a seed); re-running adds nothing."""
    rng = np.random.default_rng(seed)
    item_genres = [sorted(set(rng.choice(len(GENRES), size=rng.integers(1, 3), replace=False))) for _ in range(items)]
    items_upsert(
        items=[
            ItemRow(
                external_id=f"demo-item-{index}",
                title=f"{GENRES[genres[0]]} title #{index}",
                categories=[GENRES[g] for g in genres],
            )
            for index, genres in enumerate(item_genres)
        ]
    )
    popularity = rng.zipf(1.6, size=items).clip(max=200).astype(float)
    by_genre = {g: [i for i, genres in enumerate(item_genres) if g in genres] for g in range(len(GENRES))}
    rows = []
    for number in range(events):
        user = int(rng.integers(users))
        tastes = np.random.default_rng(seed * 100_003 + user).choice(len(GENRES), size=2, replace=False)
        pool = by_genre[int(rng.choice(tastes))] if rng.random() < 0.85 else list(range(items))
        weights = popularity[pool] / popularity[pool].sum()
        item = int(rng.choice(pool, p=weights))
        moment = START + timedelta(minutes=int(number * 37 + rng.integers(30)))
        rows.append(
            EventRow(
                user=f"demo-user-{user}",
                item=f"demo-item-{item}",
                occurred_at=moment,
                kind="rating",
                value=float(rng.integers(1, 6)),
                event_id=f"demo:{seed}:{number}",
            )
        )
    result = IngestResult()
    for batch in chunked(rows, 5000):
        result.add(interactions_ingest(events=batch))
    return result
