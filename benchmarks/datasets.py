"""Shaping public data sets before a benchmark: what the product's scenarios do with their own slice settings.

Plain NumPy on :class:`~training.interactions.InteractionData`; the product never calls these.
"""

import numpy as np

from training.evaluation.splits import select_events
from training.interactions import InteractionData, indexed_interactions


def filter_min_weight(data: InteractionData, *, threshold: float) -> InteractionData:
    """Keep the events whose weight is at least ``threshold`` (e.g. ratings ≥ 3)."""
    return select_events(data, np.flatnonzero(data.weights >= threshold))


def reindex(data: InteractionData) -> tuple[InteractionData, np.ndarray, np.ndarray]:
    """Renumber to the users and items that have events.

    Returns the new data and the old indexes of its users ``(n_users',)`` and items ``(n_items',)``.
    """
    return indexed_interactions(data.users, data.items, data.weights, data.timestamps)
