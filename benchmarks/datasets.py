"""Shaping public data sets before a benchmark: what the product's scenarios do with their own slice settings.

Plain NumPy on :class:`~training.interactions.InteractionData`; the product never calls these.
"""

import numpy as np

from training.evaluation.splits import select_events
from training.interactions import InteractionData


def filter_min_weight(data: InteractionData, *, threshold: float) -> InteractionData:
    """Keep the events whose weight is at least ``threshold`` (e.g. ratings ≥ 3)."""
    return select_events(data, np.flatnonzero(data.weights >= threshold))


def reindex(data: InteractionData) -> tuple[InteractionData, np.ndarray, np.ndarray]:
    """Renumber to the users and items that have events.

    Returns the new data and the old indexes of its users ``(n_users',)`` and items ``(n_items',)``.
    """
    users, user_index = np.unique(data.users, return_inverse=True)
    items, item_index = np.unique(data.items, return_inverse=True)
    renumbered = InteractionData(
        n_users=len(users),
        n_items=len(items),
        users=user_index.astype(np.int64),
        items=item_index.astype(np.int64),
        weights=data.weights,
        timestamps=data.timestamps,
    )
    return renumbered, users, items
