"""Sequences and training windows.

Each user's training events in time order form their sequence. Items are *tokens* ``item + 1``; token 0 is padding,
and rows are padded on the right (as in RecBole), so a causal mask alone keeps every position from seeing padding.

Training follows the standard next-item objective on every prefix position: a user's sequence is cut into
overlapping windows of ``max_length`` inputs, and each window trains the positions it sees with the most context
(:func:`training_windows`), so every training event is a target exactly once per epoch and long histories are not
truncated. One causal pass over a window trains all its positions at once, where RecBole runs one forward pass per
prefix: that is where most of the speed comes from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from training.interactions import InteractionData

PADDING = 0


@dataclass(frozen=True)
class UserSequences:
    """Every user's training events in time order, in a CSR layout.

    ``indptr`` is ``(n_users + 1,)`` int64; ``events`` ``(n_events,)`` int64 indexes into the source
    :class:`InteractionData`, user ``u``'s being ``events[indptr[u]:indptr[u + 1]]``, oldest first;
    ``items`` ``(n_events,)`` int64 are the items of those events.
    """

    indptr: np.ndarray
    events: np.ndarray
    items: np.ndarray

    @classmethod
    def from_data(cls, data: InteractionData) -> UserSequences:
        # InteractionData is sorted by time, so a stable sort by user keeps each user's events in time order.
        events = np.argsort(data.users, kind="stable").astype(np.int64)
        indptr = np.zeros(data.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(data.users, minlength=data.n_users), out=indptr[1:])
        return cls(indptr=indptr, events=events, items=data.items[events].astype(np.int64))

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def sums_before(self, values: torch.Tensor, positions: np.ndarray) -> torch.Tensor:
        """``(len(positions), r)``: for each index into ``items``, the sum of ``values`` ``(n_items, r)`` over
        the same user's items before it (the user's history before that event)."""
        totals = torch.zeros(len(self.items) + 1, values.shape[1], dtype=torch.float64, device=values.device)
        totals[1:] = values.double()[torch.from_numpy(self.items).to(values.device)].cumsum(0)
        positions = np.asarray(positions, dtype=np.int64)
        firsts = self.indptr[self.users_at(positions)]
        index = torch.from_numpy(np.stack([positions, firsts])).to(values.device)
        return (totals[index[0]] - totals[index[1]]).to(values.dtype)

    def users_at(self, positions: np.ndarray) -> np.ndarray:
        """``(len(positions),)`` int64: the user whose sequence each index into ``items`` falls in."""
        return np.searchsorted(self.indptr, positions, side="right") - 1

    def window_starts(self, max_length: int) -> np.ndarray:
        """``(n_users,)``: where each user's last ``max_length`` items (:meth:`last_tokens`) start in ``items``."""
        return self.indptr[1:] - np.minimum(self.lengths(), max_length)

    def last_tokens(self, max_length: int) -> np.ndarray:
        """``(n_users, max_length)`` int64: each user's last items as tokens, oldest first, right-padded."""
        lengths = np.minimum(self.lengths(), max_length)
        columns = np.arange(max_length)[None, :]
        valid = columns < lengths[:, None]
        if not len(self.items):
            return np.zeros((len(lengths), max_length), dtype=np.int64)
        source = np.where(valid, self.indptr[1:, None] - lengths[:, None] + columns, 0)
        return np.where(valid, self.items[source] + 1, PADDING)


def histories_to_tokens(histories: Sequence[Sequence[int]], n_items: int, max_length: int) -> np.ndarray:
    """``(len(histories), max_length)`` int64 tokens of each history's last items (oldest first), right-padded."""
    tokens = np.zeros((len(histories), max_length), dtype=np.int64)
    for row, history in enumerate(histories):
        items = np.asarray(history, dtype=np.int64).reshape(-1)[-max_length:]
        if len(items) and (items.min() < 0 or items.max() >= n_items):
            raise ValueError(f"item index out of range 0..{n_items - 1}")
        tokens[row, : len(items)] = items + 1
    return tokens


def last_positions(tokens: torch.Tensor) -> torch.Tensor:
    """``(n,)`` int64: the column of each right-padded row's latest item (0 for an empty row)."""
    return ((tokens != PADDING).sum(1) - 1).clamp(min=0)


@dataclass(frozen=True)
class Windows:
    """Training windows: ``inputs`` ``(w, L)`` int64 tokens; ``target_events`` ``(w, L)`` int64.

    ``target_events[r, j]`` is the index (into the source data) of the event that position ``j`` of
    window ``r`` learns to predict, or -1 where that position is not trained in this window. With a
    content prior, ``offsets`` ``(w, r)`` is the content of each window's user's items before it, and ``folds``
    ``(w,)`` int64 the cross-fitting fold of each window's user (:class:`ContentPrior`). ``ids`` ``(w,)`` int64, where
    a model keeps something per window (a student its teacher's targets), is each window's index among all of them.
    """

    inputs: torch.Tensor
    target_events: torch.Tensor
    offsets: torch.Tensor | None = None
    folds: torch.Tensor | None = None
    ids: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.inputs)

    def rows(self, index: torch.Tensor | slice) -> Windows:
        """The windows at ``index`` (a batch)."""
        offsets, folds, ids = (None if part is None else part[index] for part in (self.offsets, self.folds, self.ids))
        return Windows(self.inputs[index], self.target_events[index], offsets, folds, ids)


def training_windows(
    sequences: UserSequences, max_length: int, stride: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut every user's sequence into windows of ``max_length`` inputs; returns ``(inputs, target_events, starts)``.

    A user with ``n`` events has ``m = n − 1`` input positions (position ``p`` predicts event
    ``p + 1``). Window ``k`` ends at ``m − k·stride`` and trains its last ``stride`` positions, each
    of which sees at least ``max_length − stride`` earlier items; the earliest window starts at the
    sequence's start and trains every position not trained yet. So each of the ``m`` positions is
    trained exactly once. Both arrays are ``(n_windows, max_length)`` int64; a window shorter than
    ``max_length`` (a short sequence) is right-padded, with -1 targets in the padding. ``starts``
    ``(n_windows,)`` int64 is where each window's first input sits in ``sequences.items``.
    """
    length, stride = max_length, max(1, min(stride, max_length))
    m = np.maximum(sequences.lengths() - 1, 0)
    n_windows = np.where(m > 0, 1 + np.ceil(np.maximum(m - length, 0) / stride).astype(np.int64), 0)
    user = np.repeat(np.arange(len(m)), n_windows)
    k = np.arange(len(user)) - np.repeat(np.cumsum(n_windows) - n_windows, n_windows)  # 0: the latest window
    earliest = k == n_windows[user] - 1
    trained_end = m[user] - k * stride  # exclusive, in input positions
    trained_start = np.where(earliest, 0, trained_end - stride)
    end = np.where(earliest, np.minimum(m[user], length), trained_end)
    position = np.maximum(end - length, 0)[:, None] + np.arange(length)[None, :]  # input position per column
    valid = position < end[:, None]
    source = sequences.indptr[user][:, None] + np.where(valid, position, 0)
    trained = valid & (position >= trained_start[:, None]) & (position < trained_end[:, None])
    if not len(user):
        empty = np.zeros((0, length), dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.int64)
    inputs = np.where(valid, sequences.items[source] + 1, PADDING)
    target_events = np.where(trained, sequences.events[np.where(trained, source + 1, 0)], -1)
    return inputs.astype(np.int64), target_events.astype(np.int64), source[:, 0].astype(np.int64)
