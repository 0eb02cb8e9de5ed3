"""Filters and train / validation / test splits of :class:`InteractionData`.

Splits keep the index space (``n_users``, ``n_items``) of their input. Held-out sets
are :class:`HeldOut` per-user item sets, carrying each pair's weight as its value (the rating under the
rating objective; a pair held out twice gets the mean); a held-out (user, item) pair that also occurs
in the user's training events is dropped from it, since full ranking excludes training
items and could never recommend it; for the same reason a test pair that is also a
validation pair is dropped (the test ranking masks the validation items). Users left with
no held-out items are not evaluated.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from training.interactions import HeldOut, InteractionData

DEFAULT_RATIOS = (0.8, 0.1, 0.1)


@dataclass(frozen=True)
class Split:
    """A split and, for each part, the indexes ``(n,)`` int64 of its events in the source data."""

    train: InteractionData
    validation: HeldOut
    test: HeldOut
    train_events: np.ndarray
    validation_events: np.ndarray
    test_events: np.ndarray


def select_events(data: InteractionData, events: np.ndarray) -> InteractionData:
    """The events at ``events`` (``(n,)`` int64 indexes, kept in ascending order), same index space; item
    features and event domains come along."""
    events = np.sort(np.asarray(events, dtype=np.int64))
    return InteractionData(
        n_users=data.n_users,
        n_items=data.n_items,
        users=data.users[events],
        items=data.items[events],
        weights=data.weights[events],
        timestamps=data.timestamps[events],
        item_features=data.item_features,
        domains=None if data.domains is None else data.domains[events],
    )


def split_leave_last_out(data: InteractionData) -> Split:
    """Per user, the latest event goes to test and the one before it to validation.

    "Latest" is by timestamp, then by position in ``data``. A user with one event keeps it in
    training; a user with two events has no validation event.
    """
    order = np.lexsort((np.arange(data.n_events), data.timestamps, data.users))
    rank_from_end = _rank_from_end(data.users[order])
    counts = np.bincount(data.users, minlength=data.n_users)[data.users[order]]
    test = order[(rank_from_end == 0) & (counts >= 2)]
    validation = order[(rank_from_end == 1) & (counts >= 3)]
    return _split_from_events(data, validation, test)


def split_random(data: InteractionData, *, seed: int, ratios: Sequence[float] = DEFAULT_RATIOS) -> Split:
    """Per user, shuffle their events and cut them by ``ratios`` (train, validation, test), like RecBole's
    ``RS`` split with ``group_by: user`` and random order.

    A user with ``n`` events gets ``floor(n·r_validation)`` validation and ``floor(n·r_test)`` test
    events, the rest in training; where ``0 < n·r < 1`` the part still gets one event as long as
    more than one stays in training (RecBole's rounding).
    """
    _, validation_ratio, test_ratio = _check_ratios(ratios)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(data.n_events), data.users))
    rank = _rank_from_start(data.users[order])
    n = np.bincount(data.users, minlength=data.n_users)
    n_train, n_validation = _ratio_counts(n, validation_ratio, test_ratio)
    user_train, user_validation = n_train[data.users[order]], n_validation[data.users[order]]
    validation = order[(rank >= user_train) & (rank < user_train + user_validation)]
    test = order[rank >= user_train + user_validation]
    return _split_from_events(data, validation, test)


def split_temporal(data: InteractionData, *, ratios: Sequence[float] = DEFAULT_RATIOS) -> Split:
    """One global time cut: the earliest events train, the next validate, the latest test.

    Events are ordered by timestamp, then by position in ``data``; the cuts fall at
    ``floor(n·r_train)`` and ``floor(n·(r_train + r_validation))`` events, so no training event
    is later than a validation event and none of those later than a test event.
    """
    train_ratio, validation_ratio, _ = _check_ratios(ratios)
    order = np.lexsort((np.arange(data.n_events), data.timestamps))
    train_end = int(np.floor(data.n_events * train_ratio))
    validation_end = int(np.floor(data.n_events * (train_ratio + validation_ratio)))
    return _split_from_events(data, order[train_end:validation_end], order[validation_end:])


def split_from_events(data: InteractionData, validation_events: np.ndarray, test_events: np.ndarray) -> Split:
    """A split with the given events (``(n,)`` int64 indexes into ``data``) held out; the rest is training."""
    return _split_from_events(
        data, np.asarray(validation_events, dtype=np.int64), np.asarray(test_events, dtype=np.int64)
    )


def _split_from_events(data: InteractionData, validation_events: np.ndarray, test_events: np.ndarray) -> Split:
    held_out = np.zeros(data.n_events, dtype=bool)
    held_out[validation_events] = held_out[test_events] = True
    train_events = np.flatnonzero(~held_out)
    train = select_events(data, train_events)
    train_keys = _pair_keys(data, train_events)
    return Split(
        train=train,
        validation=_held_out(data, validation_events, train_keys),
        test=_held_out(data, test_events, np.union1d(train_keys, _pair_keys(data, validation_events))),
        train_events=train_events,
        validation_events=np.sort(validation_events),
        test_events=np.sort(test_events),
    )


def _pair_keys(data: InteractionData, events: np.ndarray) -> np.ndarray:
    """One int64 key per (user, item) pair of ``events``."""
    return data.users[events].astype(np.int64) * data.n_items + data.items[events].astype(np.int64)


def _held_out(data: InteractionData, events: np.ndarray, known_keys: np.ndarray) -> HeldOut:
    """The pairs of ``events`` less those in ``known_keys`` (pairs ranking masks, so never a hit)."""
    users, items = data.users[events].astype(np.int64), data.items[events].astype(np.int64)
    unseen = ~np.isin(users * data.n_items + items, known_keys)
    values = data.weights[events][unseen]
    return HeldOut.from_pairs(data.n_users, data.n_items, users[unseen], items[unseen], values)


def history_before_test(data: InteractionData, split: Split) -> InteractionData:
    """What a user has done before the test events: the training and the validation events of ``data`` (the
    data ``split`` was cut from), in time order. Sequential models read it when predicting the test events."""
    return select_events(data, np.concatenate([split.train_events, split.validation_events]))


def _rank_from_start(grouped_users: np.ndarray) -> np.ndarray:
    """Position of each entry within its run of equal values, for ``(n,)`` values sorted into runs."""
    starts = np.r_[True, grouped_users[1:] != grouped_users[:-1]]
    first = np.maximum.accumulate(np.where(starts, np.arange(len(grouped_users)), 0))
    return np.arange(len(grouped_users)) - first


def _rank_from_end(grouped_users: np.ndarray) -> np.ndarray:
    return _rank_from_start(grouped_users[::-1])[::-1]


def _ratio_counts(n: np.ndarray, validation_ratio: float, test_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Per user, ``(n_train, n_validation)`` for ``n`` ``(n_users,)`` events, following RecBole's rounding."""
    n_test = np.floor(n * test_ratio).astype(np.int64)
    n_validation = np.floor(n * validation_ratio).astype(np.int64)
    n_train = n - n_test - n_validation
    for ratio, count in ((test_ratio, n_test), (validation_ratio, n_validation)):
        bump = (n_train > 1) & (n * ratio > 0) & (n * ratio < 1)
        count += bump
        n_train -= bump
    return n_train, n_validation


def _check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    if len(ratios) != 3 or any(not np.isfinite(r) or r < 0 for r in ratios):
        raise ValueError("ratios must be three non-negative numbers: train, validation, test")
    total = float(sum(ratios))
    if ratios[0] <= 0 or abs(total - 1.0) > 1e-6:
        raise ValueError(f"ratios must sum to 1 with a positive training share, got {tuple(ratios)}")
    return ratios[0] / total, ratios[1] / total, ratios[2] / total


def split_subset(
    data: InteractionData, split: Split, keep: np.ndarray
) -> tuple[InteractionData, Split, np.ndarray, np.ndarray]:
    """The part of ``split`` made of the events where ``keep`` ``(n_events,)`` is true, re-indexed densely.

    Returns the kept events, their split (its ``*_events`` index the kept events in their original
    order) and the original indexes of the users and items that remain (``(n_users',)``,
    ``(n_items',)``). Used to give each member of a scenario group its part of the group's split.
    """
    positions = np.flatnonzero(keep)
    used_users, users = np.unique(data.users[positions], return_inverse=True)
    used_items, items = np.unique(data.items[positions], return_inverse=True)
    subset = InteractionData(
        n_users=len(used_users),
        n_items=len(used_items),
        users=users.astype(np.int64),
        items=items.astype(np.int64),
        weights=data.weights[positions],
        timestamps=data.timestamps[positions],
    )
    rank = np.full(data.n_events, -1, dtype=np.int64)
    rank[positions] = np.arange(len(positions))
    validation = rank[split.validation_events][keep[split.validation_events]]
    test = rank[split.test_events][keep[split.test_events]]
    return subset, split_from_events(subset, validation, test), used_users, used_items
