"""The MovieLens datasets as one interaction matrix per dataset, read through the catalog's own parser, and the rule
that puts each film in one scenario."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from training.interactions import InteractionData

GROUPS = (
    ("action-thriller", {"Action", "Adventure", "Sci-Fi", "Thriller", "Crime", "War", "Western", "Mystery", "Horror",
                         "IMAX"}),
    ("comedy-romance", {"Comedy", "Romance", "Musical", "Children's", "Children", "Animation", "Fantasy"}),
    ("drama-other", None),
)  # fmt: skip
SCENARIOS = tuple(name for name, _ in GROUPS)


@dataclasses.dataclass
class Dataset:
    name: str
    data: InteractionData
    titles: list[str]
    genres: list[list[str]]
    features: np.ndarray | None = None  # (n_items, 384) text embeddings, computed on demand


def dataset_load(*, name: str, folder: Path) -> Dataset:
    """``folder``'s ratings (every rating one interaction of weight 1) in time order, users and films numbered in the
    order of their MovieLens ids, with each film's title and genres."""
    parsed = _movielens_parse(folder)
    users = np.array([int(event.user) for event in parsed.events.rows], dtype=np.int64)
    items = np.array([int(event.item) for event in parsed.events.rows], dtype=np.int64)
    timestamps = np.array([int(event.occurred_at.timestamp()) for event in parsed.events.rows], dtype=np.int64)
    films = {int(row.external_id): row for row in parsed.items.rows}
    order = np.lexsort((np.arange(len(users)), timestamps))  # ties keep the file's order
    user_ids, user_index = np.unique(users[order], return_inverse=True)
    item_ids, item_index = np.unique(items[order], return_inverse=True)
    data = InteractionData(
        n_users=len(user_ids),
        n_items=len(item_ids),
        users=user_index.astype(np.int64),
        items=item_index.astype(np.int64),
        weights=np.ones(len(order), dtype=np.float32),
        timestamps=timestamps[order].astype(np.int64),
    )
    titles = [films[item].title for item in item_ids]
    genres = [list(films[item].categories) for item in item_ids]
    return Dataset(name, data, titles, genres)


def _movielens_parse(folder: Path):
    # The catalog's parser builds its rows with catalog.services' dataclasses, whose module imports the catalog's
    # models: Django must know the app, but no database or site setting is needed to parse a folder.
    from django.conf import settings

    if not settings.configured and "DJANGO_SETTINGS_MODULE" not in os.environ:
        settings.configure(INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "catalog"])
    import django

    django.setup()
    from catalog.importers.movielens import movielens_parse

    parsed = movielens_parse(folder)
    if parsed.errors:
        raise ValueError(f"{folder}: {len(parsed.errors)} unreadable lines, the first: {parsed.errors[0]}")
    return parsed


def item_groups(dataset: Dataset) -> np.ndarray:
    """``(n_items,)`` group index of each film: the first group whose genres it has, else the last."""
    groups = np.full(dataset.data.n_items, len(GROUPS) - 1, dtype=np.int64)
    for item, genres in enumerate(dataset.genres):
        for index, (_, names) in enumerate(GROUPS):
            if names is not None and names.intersection(genres):
                groups[item] = index
                break
    return groups
