"""Shared pieces of the sequential recommenders: SASRec, GRU4Rec, STAR and the distilled student.

Sequences. Each user's training events in time order form their sequence. Items are *tokens*
``item + 1``; token 0 is padding, and rows are padded on the right (as in RecBole), so a causal
mask alone keeps every position from seeing padding.

Training follows the standard next-item objective on every prefix position: a user's sequence is
cut into overlapping windows of ``max_length`` inputs, and each window trains the positions it
sees with the most context (:func:`training_windows`), so every training event is a target
exactly once per epoch and long histories are not truncated. One causal pass over a window
trains all its positions at once, where RecBole runs one forward pass per prefix: that is where
most of the speed comes from.

Scoring reads each user's last ``max_length`` training items, kept as a state tensor
(``histories``), so a saved and reloaded model scores identically.

Networks are a :class:`SequenceNetwork`: an :class:`ItemEmbedding` (optionally with content
features) and an encoder (:class:`TransformerEncoder` or :class:`GRUEncoder`); logits are dot
products with the same item embeddings (tied weights). Layers take an optional ``domain``: with
``n_domains > 0`` their weights follow STAR's star topology (shared ⊙ domain-specific).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.algorithms.base import (
    EarlyStopping,
    EpochReport,
    HeldOut,
    InteractionData,
    ProgressCallback,
    Recommender,
    no_progress,
)
from training.algorithms.content_ridge import L2 as RIDGE_L2
from training.algorithms.content_ridge import RANK as RIDGE_RANK
from training.algorithms.content_ridge import reduced_content, ridge_query_map
from training.algorithms.features import principal_directions
from training.algorithms.params import HyperparameterError, Param

PADDING = 0
INIT_STD = 0.02  # normal(0, 0.02) for embeddings and linear layers, as in BERT and RecBole's SASRec
CONTENT_MODES = ("none", "init", "side", "prior")
FINETUNE_MODES = ("all", "top")
LEARNING_RATE_SCHEDULES = ("constant", "cosine")
VERY_LOW_LOGIT = -1e9  # a finite stand-in for −inf: softmax gives exactly 0, and no NaN appears in gradients
SCORE_CHUNK = 4096  # rows per forward pass when scoring


# --- sequences ---------------------------------------------------------------------------------


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


# --- layers --------------------------------------------------------------------------------------


class DomainLinear(nn.Module):
    """A linear layer; with ``n_domains > 0``, STAR's star topology.

    Domain ``d`` computes ``y = x (W ⊙ W_d)ᵀ + b + b_d`` (Sheng et al., CIKM 2021): the shared
    weight ``W`` times, elementwise, the domain's ``W_d``, which starts at ones, so every domain
    starts as the shared layer. Without domains, or with ``domain=None``, it is ``x Wᵀ + b``.
    """

    def __init__(self, in_features: int, out_features: int, n_domains: int = 0) -> None:
        super().__init__()
        self.n_domains = n_domains
        self.weight = nn.Parameter(torch.empty(out_features, in_features).normal_(0.0, INIT_STD))
        self.bias = nn.Parameter(torch.zeros(out_features))
        if n_domains:
            self.domain_weight = nn.Parameter(torch.ones(n_domains, out_features, in_features))
            self.domain_bias = nn.Parameter(torch.zeros(n_domains, out_features))

    def forward(self, x: torch.Tensor, domain: int | None = None) -> torch.Tensor:
        if not self.n_domains or domain is None:
            return F.linear(x, self.weight, self.bias)
        return F.linear(x, self.weight * self.domain_weight[domain], self.bias + self.domain_bias[domain])


class DomainLayerNorm(nn.Module):
    """Layer normalisation; with ``n_domains > 0``, STAR's partitioned normalisation.

    Domain ``d`` scales by ``γ ⊙ γ_d`` and shifts by ``β + β_d``.
    """

    def __init__(self, size: int, n_domains: int = 0) -> None:
        super().__init__()
        self.n_domains = n_domains
        self.weight = nn.Parameter(torch.ones(size))
        self.bias = nn.Parameter(torch.zeros(size))
        if n_domains:
            self.domain_weight = nn.Parameter(torch.ones(n_domains, size))
            self.domain_bias = nn.Parameter(torch.zeros(n_domains, size))

    def forward(self, x: torch.Tensor, domain: int | None = None) -> torch.Tensor:
        weight, bias = self.weight, self.bias
        if self.n_domains and domain is not None:
            weight, bias = weight * self.domain_weight[domain], bias + self.domain_bias[domain]
        return F.layer_norm(x, (x.shape[-1],), weight, bias)


class TransformerBlock(nn.Module):
    """Pre-norm causal self-attention and a GELU feed-forward layer, each with a residual connection.

    Dropout acts on the residual branches, not on the attention probabilities: on the CPU an
    attention-dropout mask costs more than the attention itself. The query/key/value projection is
    shared by all domains; under STAR the attention's output projection, the feed-forward layers
    and the normalisations are per domain.
    """

    def __init__(self, size: int, heads: int, dropout: float, n_domains: int = 0) -> None:
        super().__init__()
        self.heads = heads
        self.attention_norm = DomainLayerNorm(size, n_domains)
        self.qkv = DomainLinear(size, 3 * size)
        self.attention_output = DomainLinear(size, size, n_domains)
        self.feedforward_norm = DomainLayerNorm(size, n_domains)
        self.feedforward_in = DomainLinear(size, 4 * size, n_domains)
        self.feedforward_out = DomainLinear(4 * size, size, n_domains)
        self.residual_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, domain: int | None = None) -> torch.Tensor:
        """``x`` ``(b, L, d)``; ``mask`` ``(L, L)`` bool, True where a query may attend to a key."""
        batch, length, size = x.shape
        qkv = self.qkv(self.attention_norm(x, domain)).view(batch, length, 3, self.heads, size // self.heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
        attended = attended.transpose(1, 2).reshape(batch, length, size)
        x = x + self.residual_dropout(self.attention_output(attended, domain))
        inner = F.gelu(self.feedforward_in(self.feedforward_norm(x, domain), domain))
        return x + self.residual_dropout(self.feedforward_out(inner, domain))


class TransformerEncoder(nn.Module):
    """SASRec's encoder: learned positions, causal pre-norm blocks and a final normalisation."""

    def __init__(self, size: int, layers: int, heads: int, dropout: float, max_length: int, n_domains: int = 0):
        super().__init__()
        self.positions = nn.Parameter(torch.empty(max_length, size).normal_(0.0, INIT_STD))
        self.input_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(TransformerBlock(size, heads, dropout, n_domains) for _ in range(layers))
        self.output_norm = DomainLayerNorm(size, n_domains)

    def forward(self, x: torch.Tensor, domain: int | None = None) -> torch.Tensor:
        """``x`` ``(b, L, d)`` item embeddings of right-padded rows → states ``(b, L, d)``."""
        length = x.shape[1]
        x = self.input_dropout(x + self.positions[:length])
        mask = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
        for block in self.blocks:
            x = block(x, mask, domain)
        return self.output_norm(x, domain)

    def top_parameters(self) -> Iterator[nn.Parameter]:
        """The last block and the output normalisation."""
        yield from self.blocks[-1].parameters()
        yield from self.output_norm.parameters()


class GRUEncoder(nn.Module):
    """GRU4Rec's encoder: a (multi-layer) GRU over the item embeddings, projected back to their size."""

    def __init__(self, size: int, hidden_size: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.input_dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(size, hidden_size, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0)
        for name, weight in self.gru.named_parameters():
            if name.startswith("bias"):
                nn.init.zeros_(weight)
            else:
                nn.init.xavier_uniform_(weight)
        self.output_dropout = nn.Dropout(dropout)
        self.output = DomainLinear(hidden_size, size)

    def forward(self, x: torch.Tensor, domain: int | None = None) -> torch.Tensor:
        """``x`` ``(b, L, d)`` → ``(b, L, d)``; right padding never reaches the items before it."""
        hidden, _ = self.gru(self.input_dropout(x))
        return self.output(self.output_dropout(hidden))

    def top_parameters(self) -> Iterator[nn.Parameter]:
        """The last GRU layer and the output projection."""
        last = f"_l{self.gru.num_layers - 1}"
        yield from (weight for name, weight in self.gru.named_parameters() if name.endswith(last))
        yield from self.output.parameters()


class ItemEmbedding(nn.Module):
    """Item vectors ``(n_items + 1, d)`` (row 0 is padding and always zero), optionally with content.

    With ``side_features`` (content ``side``), item ``i``'s vector is a free embedding plus a learned
    projection of its features ``(f,)``, so an item with few or no events still lands near items with
    similar content, and its score gets a bias learned from its features (how much any user takes to
    an item like it: the popularity its content predicts): the hybrid. With ``side_rank`` the projection
    reads only the features' top principal directions (:meth:`fit_content_basis`). Content ``init`` uses no side
    input; the free embeddings start from the features' principal components instead
    (:meth:`initialise_from_features`).
    """

    def __init__(self, n_items: int, size: int, *, side_features: int = 0, side_rank: int = 0) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.empty(n_items + 1, size).normal_(0.0, INIT_STD))
        if side_features:
            rank = min(side_rank, side_features) if side_rank else side_features
            if rank < side_features:  # set by fit_content_basis; the stored features are the reduced ones
                self.register_buffer("content_basis", torch.eye(side_features)[:, :rank].contiguous())
                self.register_buffer("content_mean", torch.zeros(side_features))
            self.register_buffer("features", torch.zeros(n_items + 1, rank))
            self.projection = nn.Parameter(torch.empty(size, rank).normal_(0.0, INIT_STD))
            self.bias_projection = nn.Parameter(torch.zeros(rank))

    @property
    def has_side_features(self) -> bool:
        return hasattr(self, "projection")

    @property
    def feature_size(self) -> int:
        """Dimensions of the raw features :meth:`set_features` takes (0 without side features)."""
        if not self.has_side_features:
            return 0
        return self.content_basis.shape[0] if hasattr(self, "content_basis") else self.features.shape[1]

    def content_weight(self) -> torch.Tensor:
        """``(n_items + 1, d)``: each item's vector from its content alone (with side features); row 0 is zero."""
        return self.features @ self.projection.T

    def weight(self, content: torch.Tensor | None = None) -> torch.Tensor:
        """``(n_items + 1, d)``: token ``t``'s vector is row ``t``; row 0 is zero. ``content`` is
        :meth:`content_weight` when the caller already has it."""
        table = self.table
        if self.has_side_features:
            table = table + (self.content_weight() if content is None else content)
        return torch.cat([torch.zeros_like(table[:1]), table[1:]])

    def bias(self) -> torch.Tensor | None:
        """``(n_items,)``: each item's content bias (with side features), added to every user's score of it."""
        return self.features[1:] @ self.bias_projection if self.has_side_features else None

    @torch.no_grad()
    def set_features(self, features: torch.Tensor) -> None:
        """Use ``features`` ``(n_items, f)`` as the side input (scaled to unit rows: 384-d text vectors vary),
        reduced to the content basis if there is one (centred, projected, and scaled to unit rows again)."""
        unit = F.normalize(features.float(), dim=1).to(self.features)
        if hasattr(self, "content_basis"):
            reduced = F.normalize((unit - self.content_mean) @ self.content_basis, dim=1)
            unit = torch.where(unit.abs().sum(1, keepdim=True) > 0, reduced, 0.0)  # no content stays no content
        self.features[1:] = unit

    @torch.no_grad()
    def fit_content_basis(self, features: torch.Tensor) -> None:
        """Set the content basis to the top principal directions of ``features`` ``(n_items, f)`` (unit rows).

        The projection then reads only the directions along which the items' content varies most: it cannot
        fit the many small ones to the items with events, which would not carry over to the items without.
        """
        if hasattr(self, "content_basis"):
            mean, basis = principal_directions(features, self.content_basis.shape[1])
            self.content_mean.copy_(mean)
            self.content_basis.copy_(basis)

    @torch.no_grad()
    def initialise_from_features(self, features: torch.Tensor) -> None:
        """Set the free embeddings to the features' top principal components (a fixed projection),
        scaled to the usual initial spread."""
        size = self.table.shape[1]
        centred = F.normalize(features.double(), dim=1)
        centred = centred - centred.mean(0, keepdim=True)
        _, _, right = torch.linalg.svd(centred, full_matrices=False)
        projected = (centred @ right[:size].T).float()
        scale = INIT_STD / projected.std().clamp(min=1e-12)
        self.table[1:, : projected.shape[1]] = projected * scale  # beyond the features' rank: keep the noise

    @torch.no_grad()
    def assign(self, items: torch.Tensor, vectors: torch.Tensor) -> None:
        """Set the first ``k`` dimensions of the free embeddings of ``items`` (``(n_items,)`` bool) to ``vectors``
        ``(items.sum(), k)``; the other items and dimensions keep theirs."""
        self.table[1:][items, : vectors.shape[1]] = vectors.to(self.table)


class MixedItemEmbedding(ItemEmbedding):
    """Item vectors of mixed dimensions (Ginart et al., 2019): the ``head`` items (the frequent ones) have free
    ``d``-dimensional embeddings, the others ``t``-dimensional ones mapped up to ``d`` by one shared projection.

    Most of a full table's parameters go to items that are rarely anyone's next item; a narrow tail gives its
    share to the head and the encoder. Parameters: ``table`` ``(1 + head items, d)`` (row 0 is padding),
    ``tail`` ``(tail items, t)`` and ``tail_projection`` ``(t, d)``; buffer ``rows`` ``(n_items + 1,)``: token
    ``t``'s row in ``cat([table, tail @ tail_projection])``. No content side input.
    """

    def __init__(self, head: torch.Tensor, size: int, tail_size: int) -> None:
        """``head`` ``(n_items,)`` bool: the items with full-size embeddings."""
        nn.Module.__init__(self)
        tokens = torch.cat([torch.ones(1, dtype=torch.bool), head.bool().cpu()])  # token 0, padding, is a head row
        n_head, n_tail = int(tokens.sum()), int((~tokens).sum())
        rows = torch.empty(len(tokens), dtype=torch.long)
        rows[tokens], rows[~tokens] = torch.arange(n_head), n_head + torch.arange(n_tail)
        self.register_buffer("rows", rows)
        self.table = nn.Parameter(torch.empty(n_head, size).normal_(0.0, INIT_STD))
        self.tail = nn.Parameter(torch.empty(n_tail, tail_size).normal_(0.0, INIT_STD))
        self.tail_projection = nn.Parameter(torch.empty(tail_size, size).normal_(0.0, tail_size**-0.5))

    @property
    def head(self) -> torch.Tensor:
        """``(n_items,)`` bool: the items with full-size embeddings."""
        return self.rows[1:] < len(self.table)

    def weight(self, content: torch.Tensor | None = None) -> torch.Tensor:
        table = torch.cat([self.table, self.tail @ self.tail_projection])[self.rows]
        return torch.cat([torch.zeros_like(table[:1]), table[1:]])

    @torch.no_grad()
    def assign(self, items: torch.Tensor, vectors: torch.Tensor) -> None:
        """As :meth:`ItemEmbedding.assign`: head items take their vectors as they are; the tail items among
        ``items`` take the best rank-``t`` fit of theirs (least squares), which sets the tail projection too."""
        size = min(vectors.shape[1], self.table.shape[1])
        vectors = vectors[:, :size].to(self.table.device, torch.float64)
        head = self.head.to(items.device)
        self.table[self.rows[1:][items & head], :size] = vectors[head[items]].to(self.table)
        tail = vectors[~head[items]]
        rank = min(self.tail.shape[1], *tail.shape)
        if rank == 0:
            return
        left, singular, right = torch.linalg.svd(tail, full_matrices=False)
        self.tail[self.rows[1:][items & ~head] - len(self.table), :rank] = (left[:, :rank] * singular[:rank]).to(
            self.tail
        )
        self.tail_projection[:rank, :size] = right[:rank].to(self.tail_projection)


class ContentPrior(nn.Module):
    """A content ridge (:mod:`training.algorithms.content_ridge`) fitted before training, whose score every logit
    adds: the user side is the ridge's query from the content of the items read so far, the item side each item's
    reduced content times a learned gain. An item without events, whose free embedding stays zero, is ranked by
    this score alone; the network learns what the content does not explain.

    Training is cross-fitted: the ridge fitted on every user scores, but it has seen each training target, so on
    the training windows it looks better than it is on what comes next, and a network trained against it leans on
    it too much. While training, each user therefore belongs to one of ``k`` folds, and their windows read the map
    fitted without that fold's users (``fold_maps``), which scores them as it will score a held-out event.

    Buffers: ``items`` ``(n_items + 1, r)`` (row 0, padding, is zero), ``query_map`` ``(r + 1, r)`` and, while
    training, ``fold_maps`` ``(k, r + 1, r)`` (not saved); parameter ``log_gain`` (the gain is its exponential, so
    it stays positive and never reverses the content's order).
    """

    fold_maps: torch.Tensor | None

    def __init__(self, n_items: int, rank: int) -> None:
        super().__init__()
        self.register_buffer("items", torch.zeros(n_items + 1, rank))
        self.register_buffer("query_map", torch.zeros(rank + 1, rank))
        self.register_buffer("fold_maps", None, persistent=False)
        self.log_gain = nn.Parameter(torch.zeros(()))

    @property
    def rank(self) -> int:
        return self.items.shape[1]

    @torch.no_grad()
    def fit(self, items: torch.Tensor, interactions: torch.Tensor, *, l2: float, user_folds: torch.Tensor) -> None:
        """Fit the ridge on reduced content ``items`` ``(n_items, r)`` and sparse CSR ``interactions``
        ``(n_users, n_items)``: ``query_map`` on every user, and one map per fold of ``user_folds`` ``(n_users,)``
        int64 (folds ``0..k−1``; a single fold keeps no fold maps: every window reads ``query_map``)."""
        self.items[1:] = items.to(self.items)
        self.query_map.copy_(ridge_query_map(items, interactions, l2=l2))
        n_folds = int(user_folds.max()) + 1 if len(user_folds) else 1
        self.fold_maps = None
        if n_folds > 1:
            self.fold_maps = torch.stack(
                [ridge_query_map(items, interactions, l2=l2, users=user_folds != fold) for fold in range(n_folds)]
            ).to(self.query_map)

    def queries(
        self, tokens: torch.Tensor, offsets: torch.Tensor | None = None, folds: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``tokens`` ``(b, L)`` → ``(b, L, r)``: at position ``j``, the query of the content of tokens ``0..j``
        plus ``offsets`` ``(b, r)`` (the content of the items each row's history had before its tokens). With
        ``folds`` ``(b,)`` (training windows), row ``i`` reads ``fold_maps[folds[i]]`` instead of ``query_map``."""
        profiles = self.items[tokens].cumsum(dim=1)
        if offsets is not None:
            profiles = profiles + offsets[:, None, :]
        if folds is None or self.fold_maps is None:
            return profiles @ self.query_map[:-1] + self.query_map[-1]
        queries = torch.empty_like(profiles)
        for fold, query_map in enumerate(self.fold_maps):
            rows = folds == fold
            queries[rows] = profiles[rows] @ query_map[:-1] + query_map[-1]
        return queries

    def offsets(self, histories: Sequence[Sequence[int]], max_length: int) -> torch.Tensor:
        """``(len(histories), r)``: the content of each history's items before its last ``max_length``."""
        sums = torch.zeros(len(histories), self.rank, device=self.items.device)
        for row, history in enumerate(histories):
            earlier = np.asarray(history, dtype=np.int64).reshape(-1)[:-max_length]
            if len(earlier):
                sums[row] = self.items[torch.from_numpy(earlier + 1).to(self.items.device)].sum(0)
        return sums

    def item_side(self) -> torch.Tensor:
        """``(n_items + 1, r)``: the items' reduced content times the gain."""
        return self.items * self.log_gain.exp()


class SequenceNetwork(nn.Module):
    """Item embeddings and an encoder; logits are dot products with the (tied) item embeddings.

    With a :class:`ContentPrior` (content ``prior``), a state carries the prior's query beside the encoder's output
    and an item's output vector its content beside its embedding, so one dot product gives both terms.
    """

    prior: ContentPrior | None

    def __init__(self, items: ItemEmbedding, encoder: nn.Module) -> None:
        super().__init__()
        self.items = items
        self.encoder = encoder
        self.prior = None

    def hidden(
        self,
        tokens: torch.Tensor,
        table: torch.Tensor,
        domain: int | None = None,
        offsets: torch.Tensor | None = None,
        folds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``tokens`` ``(b, L)`` → states ``(b, L, d)`` (``(b, L, d + r)`` with a prior): position ``j`` has read
        tokens ``0..j``; the prior reads the content of the items before them too (``offsets``) and, on training
        windows, each row's fold's map (``folds``; see :meth:`ContentPrior.queries`).

        ``table`` is :meth:`ItemEmbedding.weight`, computed once per batch by the caller.
        """
        states = self.encoder(table[tokens], domain)
        if self.prior is None:
            return states
        return torch.cat([states, self.prior.queries(tokens, offsets, folds).to(states.dtype)], dim=-1)

    def states(self, hidden: torch.Tensor) -> torch.Tensor:
        """The encoder's part ``(..., d)`` of :meth:`hidden`'s states."""
        return hidden[..., : self.items.table.shape[1]]

    def output_table(self, table: torch.Tensor) -> torch.Tensor:
        """``(n_items + 1, d)`` (``d + r`` with a prior): what states are scored against, row 0 padding."""
        if self.prior is None:
            return table
        return torch.cat([table, self.prior.item_side().to(table.dtype)], dim=1)

    def logits(
        self, hidden: torch.Tensor, table: torch.Tensor, domain: int | None = None, kept: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(P, d)`` states → ``(P, n_items)`` scores of every item: ``hidden @ output_table(table)[1:].T``, the
        prior's part computed apart (its queries and content are fixed, so only the gain needs its gradient).
        ``kept`` ``(n_items,)`` bool (training, :class:`BatchItems`): the items whose own per-item terms count;
        the others' rows of ``table`` are zero already."""
        prior = self.prior
        if prior is None:
            scores = hidden @ table[1:].T
        else:
            size = table.shape[1]
            with torch.no_grad():
                content = hidden[..., size:] @ prior.items[1:].T.to(hidden.dtype)
            scores = self.states(hidden) @ table[1:].T + prior.log_gain.exp().to(hidden.dtype) * content
        bias = self.items.bias()
        if bias is not None and kept is not None:
            bias = bias * kept
        return scores if bias is None else scores + bias.to(scores.dtype)

    def item_indexed(self) -> dict[str, int]:
        """Tensors with one entry per token along an axis (name → axis): gathered, not copied, on transfer."""
        return {"items.table": 0, "items.features": 0, "prior.items": 0}

    @torch.no_grad()
    def forget_items(self, items: torch.Tensor) -> None:
        """Zero the learned per-item weights of ``items`` (``(n_items,)`` bool): their free embeddings."""
        self.items.table[1:][items] = 0.0

    def top_parameters(self) -> Iterator[nn.Parameter]:
        """What ``finetune="top"`` trains: the encoder's top, the output normalisation and the item embeddings."""
        yield from self.encoder.top_parameters()
        yield from self.items.parameters()  # the free embeddings (and any content or tail projection)
        if self.prior is not None:
            yield self.prior.log_gain


# --- hyperparameters -----------------------------------------------------------------------------


def sequential_params(
    *,
    embedding_size: int = 64,
    layers: int = 2,
    learning_rate: float = 1e-3,
    architecture: tuple[Param, ...] = (),
    extra: tuple[Param, ...] = (),
) -> tuple[Param, ...]:
    """The hyperparameters the sequential models share, with per-model architecture defaults."""
    return (
        Param("embedding_size", int, embedding_size, help="Dimensions of item vectors and states.", minimum=4,
              maximum=1024),
        Param("layers", int, layers, help="Stacked encoder layers.", minimum=1, maximum=12),
        *architecture,
        Param("max_length", int, 50, help="Most recent items the model reads.", minimum=2, maximum=1000),
        Param("dropout", float, 0.2, help="Dropout on embeddings and hidden layers.", minimum=0.0, maximum=0.9),
        *extra,
        Param("learning_rate", float, learning_rate, help="AdamW step size.", minimum=1e-6, maximum=1.0),
        Param("learning_rate_schedule", str, "constant", help="constant; or cosine: the step falls from "
              "learning_rate to 0 along half a cosine over epochs (early stopping still picks the epoch kept).",
              choices=LEARNING_RATE_SCHEDULES),
        Param("weight_decay", float, 0.0, help="AdamW's decoupled weight decay.", minimum=0.0, maximum=1.0),
        Param("batch_size", int, 256, help="Training windows (of up to max_length positions each) per step.",
              minimum=1, maximum=1 << 16),
        Param("epochs", int, 200, help="Most passes over the training sequences.", minimum=1, maximum=2000),
        Param("early_stopping_patience", int, 10, help="Epochs without a better validation NDCG@10 before stopping.",
              minimum=1, maximum=1000),
        Param("mixed_precision", bool, False, help="bfloat16 autocast on CUDA (ignored on the CPU)."),
        Param("compile", bool, False, help="torch.compile the encoder on CUDA (ignored on the CPU)."),
        Param("content", str, "none", help="Item features: none; init (item embeddings start from them); side "
              "(a learned projection of them is added to every item's embedding); prior (every score adds a content "
              "ridge fitted before training, which alone ranks the items without events).", choices=CONTENT_MODES),
        Param("content_rank", int, 0, help="With content side: the projection reads the features' top this many "
              "principal directions (0: every dimension).", minimum=0, maximum=4096),
        Param("content_loss", float, 1.0, help="With content side: weight of a second next-item loss that scores "
              "every item by its content alone, as items without events are scored.", minimum=0.0, maximum=10.0),
        Param("prior_rank", int, RIDGE_RANK.default, help="With content prior: principal directions of the item "
              "features the content ridge reads (0: every one).", minimum=RIDGE_RANK.minimum,
              maximum=RIDGE_RANK.maximum),
        Param("prior_l2", float, RIDGE_L2.default, help="With content prior: the content ridge's penalty, relative "
              "to the product of the largest eigenvalues of its two Gram matrices.", minimum=RIDGE_L2.minimum,
              maximum=RIDGE_L2.maximum),
        Param("prior_dropout", float, 0.1, help="With content prior: share of the items each training batch scores "
              "by the prior alone, their own embedding dropped, as items without events are scored; this puts "
              "content-only scores on the scale of the others, so new items neither crowd out nor vanish behind "
              "items with events (0: off).", minimum=0.0, maximum=0.9),
        Param("prior_folds", int, 5, help="With content prior: user folds the ridge is cross-fitted on while "
              "training (each user's windows read the ridge fitted without them; 1: one ridge on everyone).",
              minimum=1, maximum=50),
        Param("finetune", str, "all", help="From a parent run: train every layer, or only the top layer, the "
              "output normalisation and the item embeddings.", choices=FINETUNE_MODES),
    )  # fmt: skip


LOSS_PARAMS = (
    Param("loss", str, "softmax", help="Full softmax cross-entropy over all items, or sampled softmax.",
          choices=("softmax", "sampled")),
    Param("negatives", int, 256, help="Uniformly drawn negative items per step for the sampled loss.", minimum=1,
          maximum=1 << 20),
)  # fmt: skip

HEADS = Param("heads", int, 2, help="Attention heads per layer (must divide embedding_size).", minimum=1, maximum=64)


def check_heads(hparams: dict[str, Any]) -> None:
    if hparams["embedding_size"] % hparams["heads"]:
        raise HyperparameterError({"heads": f"must divide embedding_size ({hparams['embedding_size']})"})


# --- the shared recommender ----------------------------------------------------------------------


class BatchItems(NamedTuple):
    """One training batch's item vectors (:meth:`SequentialRecommender._item_tables`): ``table``
    ``(n_items + 1, d)``; ``content`` the content-only vectors when the content loss needs them; ``kept``
    ``(n_items,)`` bool with a content prior and ``prior_dropout``: the items scored with their own embedding in
    this batch (the others' rows of ``table`` are zero, so the prior alone scores them), else ``None``."""

    table: torch.Tensor
    content: torch.Tensor | None
    kept: torch.Tensor | None


class SequentialRecommender(Recommender):
    """Fit loop, scoring, state and transfer shared by the sequential models.

    Subclasses define :meth:`_build_network`, ``encoder_class`` and ``architecture_params`` (the
    hyperparameters that shape the network: a fine-tuned run takes them from its parent, and its
    training hyperparameters are its own).
    """

    family = "sequential"
    supports_initialize_from = True
    architecture_params: ClassVar[tuple[str, ...]] = ()
    encoder_class: ClassVar[type[nn.Module]]
    # Windows overlap by half: each trained position reads at least max_length / 2 earlier items.
    window_overlap: ClassVar[float] = 0.5

    def __init__(self, params: Any = None, *, device: str | torch.device = "cpu", seed: int = 0) -> None:
        super().__init__(params, device=device, seed=seed)
        self._check_architecture(self.hparams)
        self.network: SequenceNetwork | None = None
        self.histories = torch.zeros(0, self.hparams["max_length"], dtype=torch.long, device=self.device)
        # With a content prior: (n_users, r), the content of each user's training items before ``histories``.
        self.history_offsets: torch.Tensor | None = None
        self.from_parent = False
        self.uses_item_features = self.hparams["content"] != "none"
        self._compiled_hidden: Callable[..., torch.Tensor] | None = None
        self._items_by_event = torch.zeros(0, dtype=torch.long)
        # With content side: 0 for the items with training events, VERY_LOW_LOGIT for those without (n_items,).
        self._unseen_logits: torch.Tensor | None = None
        # With a content prior, while training: (n_users,) int64, each user's cross-fitting fold.
        self._user_folds: torch.Tensor | None = None

    def _check_architecture(self, hparams: dict[str, Any]) -> None:
        """Checks across hyperparameters; raise :class:`HyperparameterError`."""

    def _build_network(self, n_items: int, feature_size: int) -> SequenceNetwork:
        raise NotImplementedError

    def _item_embedding(self, n_items: int, size: int, feature_size: int) -> ItemEmbedding:
        """The item vectors for :meth:`_build_network`, with side features of ``feature_size`` (0: none)."""
        return ItemEmbedding(n_items, size, side_features=feature_size, side_rank=self.hparams["content_rank"])

    # -- fitting

    def fit(
        self, data: InteractionData, progress: ProgressCallback = no_progress, *, validation: HeldOut | None = None
    ) -> None:
        """Train on every prefix position of each user's sequence; early-stop on validation NDCG@10."""
        features = self._content_features(data)
        with self._seeded():
            self._prepare(data, features)
            sequences = UserSequences.from_data(data)
            self.histories = torch.from_numpy(sequences.last_tokens(self.hparams["max_length"])).to(self.device)
            prior = self._network.prior
            self.history_offsets = None
            if prior is not None:
                starts = sequences.window_starts(self.hparams["max_length"])
                self.history_offsets = sequences.sums_before(prior.items[1:], starts)
            self._items_by_event = torch.from_numpy(data.items.astype(np.int64)).to(self.device)
            self._before_training(data)
            windows = self._windows(sequences)
            optimizer = torch.optim.AdamW(
                self._trainable_parameters(),
                lr=self.hparams["learning_rate"],
                weight_decay=self.hparams["weight_decay"],
            )
            stopper = self._early_stopping(data, validation)
            epochs = self.hparams["epochs"]
            schedule = None
            if self.hparams["learning_rate_schedule"] == "cosine":
                schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
            for epoch in range(1, epochs + 1):
                loss = self._train_epoch(windows, optimizer)
                if schedule is not None:
                    schedule.step()
                progress(EpochReport(phase="train", step=epoch, total=epochs, loss=loss, validation=stopper.observe()))
                if stopper.should_stop:
                    break
            stopper.restore_best()
        self._network.eval()
        self._user_folds = None  # the fold maps are for training only: scoring reads the ridge fitted on everyone
        if self._network.prior is not None:
            self._network.prior.fold_maps = None

    def _early_stopping(self, data: InteractionData, validation: HeldOut | None) -> EarlyStopping:
        """What picks the epoch :meth:`fit` keeps, and stops it: validation NDCG@10."""
        return EarlyStopping(self, data, validation, patience=self.hparams["early_stopping_patience"])

    def _prepare(self, data: InteractionData, features: torch.Tensor | None) -> None:
        """Build the network (or check the one a parent gave) and attach the content features."""
        if self.from_parent:
            if self.n_items != data.n_items:
                raise ValueError(f"initialize_from mapped {self.n_items} items, but the data has {data.n_items}")
        else:
            side = features.shape[1] if features is not None and self.hparams["content"] == "side" else 0
            self.network = self._build_network(data.n_items, side).to(self.device)
            if features is not None and self.hparams["content"] == "init":
                self._network.items.initialise_from_features(features)
            if side:
                self._network.items.fit_content_basis(features)
        self.n_users, self.n_items = data.n_users, data.n_items
        self._compiled_hidden = None
        self._unseen_logits = None
        self._user_folds = None
        if features is not None and self.hparams["content"] == "side":
            self._attach_side_features(features)
        if features is not None and self.hparams["content"] == "prior":
            self._attach_prior(features, data)
        self._start_item_embeddings()
        if self.hparams["content"] in ("side", "prior") and not self.from_parent:
            self._forget_unseen_items(data)  # a fine-tuned run keeps what its parent learned of every item

    def _start_item_embeddings(self) -> None:
        """Hook for subclasses (the student's embeddings from its teacher's), before items without events are
        reset to their content alone."""

    def _forget_unseen_items(self, data: InteractionData) -> None:
        """Items without training events are their content alone: their own weights are zero, and they
        are left out of the training softmax (being nobody's next item says nothing of them), so they stay zero
        and content decides where they rank when scored."""
        seen = torch.from_numpy(np.bincount(data.items, minlength=data.n_items) > 0).to(self.device)
        self._network.forget_items(~seen)
        if not bool(seen.all()):
            self._unseen_logits = torch.where(seen, 0.0, VERY_LOW_LOGIT)

    def _attach_side_features(self, features: torch.Tensor) -> None:
        items = self._network.items
        if items.feature_size != features.shape[1]:
            fresh = self._item_embedding(self.n_items, items.table.shape[1], features.shape[1])
            fresh.table = items.table
            fresh.fit_content_basis(features)
            self._network.items = fresh.to(self.device)
        self._network.items.set_features(features)

    def _attach_prior(self, features: torch.Tensor, data: InteractionData) -> None:
        """Fit the content ridge on ``data`` (cross-fitted, :class:`ContentPrior`) and put it in the network; a
        prior of the same rank already there (a parent's) keeps its gain. Call inside the seeded block."""
        items = reduced_content(features, self.hparams["prior_rank"])
        folds = min(self.hparams["prior_folds"], max(data.n_users, 1))
        self._user_folds = (torch.randperm(data.n_users) % folds).to(self.device)
        network = self._network
        if network.prior is None or network.prior.rank != items.shape[1]:
            network.prior = ContentPrior(self.n_items, items.shape[1]).to(self.device)
        network.prior.fit(items, data.csr().to(self.device), l2=self.hparams["prior_l2"], user_folds=self._user_folds)

    def _before_training(self, data: InteractionData) -> None:
        """Hook for subclasses (STAR's domains), called inside the seeded block before the windows are cut."""

    def _content_features(self, data: InteractionData) -> torch.Tensor | None:
        mode = self.hparams["content"]
        if mode == "none":
            return None
        if data.item_features is None:
            raise ValueError(
                f'content="{mode}" needs item features (InteractionData.item_features, (n_items, d) float32), '
                "and the data has none: embed the items first, or set content to none"
            )
        return torch.from_numpy(np.asarray(data.item_features, dtype=np.float32)).to(self.device)

    def _window_stride(self) -> int:
        """How far apart training windows start (they overlap by ``window_overlap``)."""
        return max(1, round(self.hparams["max_length"] * (1.0 - self.window_overlap)))

    def _windows(self, sequences: UserSequences) -> Windows:
        inputs, targets, starts = training_windows(sequences, self.hparams["max_length"], self._window_stride())
        prior = self._network.prior
        offsets = folds = None
        if prior is not None:
            offsets = sequences.sums_before(prior.items[1:], starts)
            if self._user_folds is not None:
                folds = self._user_folds[torch.from_numpy(sequences.users_at(starts)).to(self.device)]
        inputs_tensor, targets_tensor = (torch.from_numpy(array).to(self.device) for array in (inputs, targets))
        return Windows(inputs_tensor, targets_tensor, offsets, folds)

    def _trainable_parameters(self) -> list[nn.Parameter]:
        network = self._network
        if self.from_parent and self.hparams["finetune"] == "top":
            top = {id(weight) for weight in network.top_parameters()}
            for weight in network.parameters():
                weight.requires_grad_(id(weight) in top)
        return [weight for weight in network.parameters() if weight.requires_grad]

    def _train_epoch(self, windows: Windows, optimizer: torch.optim.Optimizer) -> float:
        """One shuffled pass over the windows; returns the mean loss per trained position."""
        self._network.train()
        order = torch.randperm(len(windows), device=self.device)
        total, count = torch.zeros((), device=self.device), 0
        for batch in order.split(self.hparams["batch_size"]):
            with self._autocast():
                loss, positions = self._batch_loss(windows.rows(batch))
            if not positions:
                continue
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, count = total + loss.detach().float() * positions, count + positions
        return float(total) / max(count, 1)

    def _training_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` ``(P, n_items)`` with the items that have no training events left out of the softmax."""
        return logits if self._unseen_logits is None else logits + self._unseen_logits

    def _batch_loss(self, batch: Windows) -> tuple[torch.Tensor, int]:
        """Mean next-item loss over the trained positions of a batch of ``(b, L)`` windows, and their number."""
        trained = batch.target_events >= 0
        items = self._item_tables()
        hidden = self._hidden(batch.inputs, items.table, offsets=batch.offsets, folds=batch.folds)[trained]
        targets = self._items_by_event[batch.target_events[trained]]
        return self._next_item_loss(hidden, targets, items), len(targets)

    def _item_tables(self) -> BatchItems:
        """For one training batch: the item vectors, the content-only ones when the content loss needs them
        (the content projection computed once), and with a content prior the items that keep their embedding
        (each dropped with probability ``prior_dropout``, in the batch's inputs and outputs alike)."""
        network = self._network
        items = network.items
        content = items.content_weight() if self.hparams["content_loss"] and items.has_side_features else None
        table, kept = items.weight(content), None
        if network.prior is not None and self.hparams["prior_dropout"] > 0 and network.training:
            kept = torch.rand(self.n_items, device=table.device) >= self.hparams["prior_dropout"]
            table = table * torch.cat([kept.new_ones(1), kept])[:, None].to(table.dtype)
        return BatchItems(table, content, kept)

    def _next_item_loss(
        self, hidden: torch.Tensor, targets: torch.Tensor, items: BatchItems, domain: int | None = None
    ) -> torch.Tensor:
        """Cross-entropy of ``targets`` ``(P,)`` (item indexes) given states ``(P, d)``, plus the content term."""
        return self._item_loss(hidden, targets, items.table, domain, items.kept) + self._content_only_loss(
            hidden, targets, items.content, domain
        )

    def _content_only_loss(
        self, hidden: torch.Tensor, targets: torch.Tensor, content: torch.Tensor | None, domain: int | None = None
    ) -> torch.Tensor | float:
        """``content_loss`` × the cross-entropy of ``targets`` with every item scored by its content alone
        (``content``, from :meth:`_item_tables`), as items without events are scored; 0 when ``content`` is
        ``None``. Every training loss adds it."""
        if content is None:
            return 0.0
        return self.hparams["content_loss"] * self._item_loss(hidden, targets, content, domain)

    def _item_loss(
        self,
        hidden: torch.Tensor,
        targets: torch.Tensor,
        table: torch.Tensor,
        domain: int | None,
        kept: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Cross-entropy of ``targets`` with the items' vectors ``table`` ``(n_items + 1, d)`` (``kept``: see
        :class:`BatchItems`)."""
        if self.hparams.get("loss", "softmax") == "softmax":
            logits = self._network.logits(hidden, table, domain, kept)
            return F.cross_entropy(self._training_logits(logits), targets)
        item_logits = self._network.items.bias()
        if item_logits is not None and kept is not None:
            item_logits = item_logits * kept
        if self._unseen_logits is not None:
            item_logits = self._unseen_logits if item_logits is None else item_logits + self._unseen_logits
        output = self._network.output_table(table)[1:]
        return sampled_softmax_loss(hidden, targets, output, self.hparams["negatives"], item_logits)

    def _hidden(
        self,
        tokens: torch.Tensor,
        table: torch.Tensor,
        domain: int | None = None,
        offsets: torch.Tensor | None = None,
        folds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The network's states for training, through ``torch.compile`` when asked for on CUDA."""
        network = self._network
        if not (self.hparams["compile"] and self.device.type == "cuda"):
            return network.hidden(tokens, table, domain, offsets, folds)
        if self._compiled_hidden is None:
            self._compiled_hidden = torch.compile(network.hidden, dynamic=True)
        return self._compiled_hidden(tokens, table, domain, offsets, folds)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.hparams["mixed_precision"] and self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -- scoring

    @property
    def _network(self) -> SequenceNetwork:
        if self.network is None:
            raise RuntimeError(f"{self.name} is not fitted")
        return self.network

    @torch.no_grad()
    def score(self, users: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Every item's score after each user's last ``max_length`` training items: ``(len(users), n_items)``
        (a content prior reads all of them)."""
        users_tensor = self.users_tensor(users)
        return self._score_tokens(self.histories[users_tensor], offsets=self._history_offsets(users_tensor))

    def _history_offsets(self, users: torch.Tensor) -> torch.Tensor | None:
        return None if self.history_offsets is None else self.history_offsets[users]

    @torch.no_grad()
    def score_sequences(self, item_index_lists: Sequence[Sequence[int]]) -> torch.Tensor:
        """Every item's score after each given history (item indexes, oldest first): ``(n, n_items)`` float32.

        Only the last ``max_length`` items of a history are read (a content prior reads all of them); an empty
        history is allowed.
        """
        tokens = histories_to_tokens(item_index_lists, self.n_items, self.hparams["max_length"])
        return self._score_tokens(
            torch.from_numpy(tokens).to(self.device), offsets=self._sequence_offsets(item_index_lists)
        )

    def _sequence_offsets(self, item_index_lists: Sequence[Sequence[int]]) -> torch.Tensor | None:
        prior = self._network.prior
        return None if prior is None else prior.offsets(item_index_lists, self.hparams["max_length"])

    def _score_tokens(
        self, tokens: torch.Tensor, domains: torch.Tensor | None = None, offsets: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scores after right-padded ``tokens`` ``(n, L)``; row ``r`` under domain ``domains[r]`` if given, its
        content prior also reading ``offsets[r]`` (:meth:`ContentPrior.queries`)."""
        network = self._network
        network.eval()
        scores = torch.empty(len(tokens), self.n_items, device=self.device)
        rows = torch.arange(len(tokens), device=self.device)
        groups: list[tuple[int | None, torch.Tensor]] = [(None, rows)]
        if domains is not None:
            groups = [(int(domain), rows[domains == domain]) for domain in torch.unique(domains)]
        with self._autocast():
            table = network.items.weight()
            for domain, group in groups:
                for chunk in group.split(SCORE_CHUNK):
                    hidden = network.hidden(tokens[chunk], table, domain, None if offsets is None else offsets[chunk])
                    hidden = hidden[torch.arange(len(chunk), device=self.device), last_positions(tokens[chunk])]
                    scores[chunk] = network.logits(hidden, table, domain).float()
        return scores.cpu()

    @torch.no_grad()
    def position_scores(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Scores at chosen positions of token windows, in this model's item space.

        ``tokens`` is ``(b, L)`` int64 right-padded tokens (``L`` at most ``max_length``) and
        ``positions`` ``(b, L)`` bool; returns ``(positions.sum(), n_items)`` float32. Position ``j``
        is scored after tokens ``0..j``: for a window's last item that is exactly
        :meth:`score_sequences` of the window, and a distillation teacher scores every prefix a
        student trains on in one pass. A content prior reads the windows' items only, not what came before them.
        """
        return self.state_scores(self.position_states(tokens, positions))

    @torch.no_grad()
    def position_states(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """The states ``(positions.sum(), d)`` that :meth:`position_scores` scores (``d + r`` with a content prior:
        they are scored against :meth:`item_vectors`)."""
        network = self._network
        network.eval()
        if tokens.shape[1] > self.hparams["max_length"]:
            raise ValueError(f"windows of {tokens.shape[1]} are longer than max_length {self.hparams['max_length']}")
        with self._autocast():
            return network.hidden(tokens, network.items.weight())[positions]

    @torch.no_grad()
    def state_scores(self, states: torch.Tensor) -> torch.Tensor:
        """Every item's score ``(P, n_items)`` float32 for states ``(P, d)`` of :meth:`position_states`."""
        network = self._network
        network.eval()
        with self._autocast():
            return network.logits(states, network.items.weight()).float()

    def item_vectors(self) -> torch.Tensor:
        """The item vectors states are scored against ``(n_items, d)`` (content projection included; with a content
        prior, ``(n_items, d + r)``: the gain-scaled content beside each embedding)."""
        with torch.no_grad():
            return self._network.output_table(self._network.items.weight())[1:]

    # -- state

    def state_tensors(self) -> dict[str, torch.Tensor]:
        state = {f"network.{name}": value.detach() for name, value in self._network.state_dict().items()}
        offsets = {} if self.history_offsets is None else {"history_offsets": self.history_offsets}
        return state | {"histories": self.histories} | offsets

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        state = {
            name.removeprefix("network."): value
            for name, value in tensors.items()
            if name not in ("histories", "history_offsets")
        }
        if self.network is None or self._shapes_differ(state):
            feature_size = self._adopt_side_shape(state)
            tokens = state["items.rows"] if "items.rows" in state else state["items.table"]  # mixed: one row each
            self.network = self._build_network(len(tokens) - 1, feature_size).to(self.device)
            if "prior.items" in state:
                tokens, rank = state["prior.items"].shape
                self.network.prior = ContentPrior(tokens - 1, rank).to(self.device)
        self._network.load_state_dict(state)
        self._network.eval()
        self.histories = tensors["histories"].long().to(self.device)
        offsets = tensors.get("history_offsets")
        self.history_offsets = None if offsets is None else offsets.float().to(self.device)

    def _adopt_side_shape(self, state: dict[str, torch.Tensor]) -> int:
        """The raw feature size of a network ``state``'s side features (0 without), taking its content rank."""
        if "items.features" not in state:
            return 0
        basis = state.get("items.content_basis")
        self.hparams["content_rank"] = 0 if basis is None else basis.shape[1]
        return state["items.features"].shape[1] if basis is None else basis.shape[0]

    def _shapes_differ(self, state: dict[str, torch.Tensor]) -> bool:
        current = self._network.state_dict()
        return current.keys() != state.keys() or any(current[name].shape != state[name].shape for name in state)

    def parameter_count(self) -> int:
        """Learned numbers only (a content prior's closed-form map counts): the stored histories and content
        features are inputs, not parameters."""
        network = self._network
        learned = sum(weight.numel() for weight in network.parameters())
        return learned + (network.prior.query_map.numel() if network.prior is not None else 0)

    # -- transfer

    def initialize_from(self, parent: Recommender, item_map: np.ndarray) -> None:
        """Start from ``parent``'s weights to fine-tune; call before :meth:`fit`.

        The architecture hyperparameters (``architecture_params``) are taken from the parent; the
        training ones (learning rate, epochs, dropout, ``finetune``…) stay this run's. Every parent
        tensor with the same name and shape is copied (encoder layers, positions, normalisations,
        the content projection); item-indexed tensors are gathered through ``item_map``
        (``(n_items,)`` int64: the parent's index of each item, or -1), and items the parent does not
        know keep a fresh initialisation.
        """
        parent_network = self._check_parent(parent)
        item_map = np.asarray(item_map, dtype=np.int64)
        if item_map.ndim != 1 or (len(item_map) and (item_map.max() >= parent.n_items or item_map.min() < -1)):
            raise ValueError(f"item_map must be a 1-D array of parent item indexes (below {parent.n_items}) or -1")
        adopted = {name: parent.hparams[name] for name in self.architecture_params if name in parent.hparams}
        self._check_architecture(self.hparams | adopted)
        self.hparams.update(adopted)
        parent_state = parent_network.state_dict()
        if isinstance(parent_network.items, MixedItemEmbedding):  # the child learns every item at full size
            parent_state = {name: value for name, value in parent_state.items() if not name.startswith("items.")}
            parent_state["items.table"] = parent_network.items.weight().detach()
        feature_size = self._adopt_side_shape(parent_state) if self.hparams["content"] == "side" else 0
        with self._seeded():
            network = self._build_network(len(item_map), feature_size)
        if self.hparams["content"] == "prior" and parent_network.prior is not None:
            network.prior = ContentPrior(len(item_map), parent_network.prior.rank)  # its gain comes from the parent
        network.to(self.device)
        token_map = torch.from_numpy(np.concatenate([[0], item_map + 1])).to(self.device)  # 0: padding or unknown
        known = token_map > 0
        known[0] = True
        indexed = network.item_indexed()
        with torch.no_grad():
            for name, value in network.state_dict().items():
                source = parent_state.get(name)
                if source is None:
                    continue
                source = source.to(self.device)
                if name in indexed:
                    axis = indexed[name]
                    other_dims = [dim for dim in range(value.ndim) if dim != axis]
                    if [value.shape[dim] for dim in other_dims] != [source.shape[dim] for dim in other_dims]:
                        continue
                    keep = known.view([-1 if dim == axis else 1 for dim in range(value.ndim)])
                    value.copy_(torch.where(keep, source.index_select(axis, token_map), value))
                elif source.shape == value.shape:
                    value.copy_(source)
        self.network, self.n_items, self.from_parent = network, len(item_map), True

    def _check_parent(self, parent: Recommender) -> SequenceNetwork:
        if not isinstance(parent, SequentialRecommender) or parent.encoder_class is not self.encoder_class:
            raise ValueError(f"{self.name} cannot start from a {parent.name} run")
        if parent.network is None:
            raise ValueError(f"the parent {parent.name} model is not fitted")
        return parent.network

    # -- helpers

    @contextlib.contextmanager
    def _seeded(self) -> Iterator[None]:
        """Run with torch's generators seeded from ``seed``, and put back as they were afterwards."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            yield


def sampled_softmax_loss(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    items: torch.Tensor,
    negatives: int,
    item_logits: torch.Tensor | None = None,
) -> torch.Tensor:
    """Softmax cross-entropy over each target and ``negatives`` uniformly drawn items shared by the batch.

    ``hidden`` ``(P, d)``, ``targets`` ``(P,)``, ``items`` ``(n_items, d)``; ``item_logits`` ``(n_items,)``
    is added to each item's logit (a bias; ``VERY_LOW_LOGIT`` leaves a drawn item out). A drawn item equal to
    the target is masked out; uniform draws need no log-probability correction (it is a constant).
    """
    drawn = torch.randint(0, items.shape[0], (negatives,), device=hidden.device)
    positive = (hidden * items[targets]).sum(-1, keepdim=True)
    negative = hidden @ items[drawn].T
    if item_logits is not None:
        positive = positive + item_logits[targets, None]
        negative = negative + item_logits[drawn]
    negative = negative.masked_fill(drawn[None, :] == targets[:, None], VERY_LOW_LOGIT)
    logits = torch.cat([positive, negative], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(targets), dtype=torch.long, device=hidden.device))
