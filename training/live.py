"""Live history for serving: score from the events a user (or an anonymous session) has now, not the training ones.

A user's history is read at request time in one query on the ``(user, -occurred_at)`` index, with the items they
have seen: their latest events that the scenario counts (its event kinds and minimum value), at most the model's
``max_length`` (sequential models) or ``RECSYS_LIVE_HISTORY_LENGTH``. Events on items the model does not know are
left out; the rest are scored by :func:`training.algorithms.history.history_scores`. Fallbacks, named in the response:

- ``None``: scored from the live history (``history_events`` of them), whether or not the model saw the user;
- ``"training_history"``: the model cannot read a live history (a content ridge saved before it kept its map), so a
  user it was trained on is scored from their training history;
- ``"popularity"``: no usable event. The score is the share of the model's training users who had the item (0 to 1),
  the same for every such request of a model.

Items added after training (active, passing the scenario's filter, not in the model) are candidates where the
model scores them by content (content, content ridge, and the sequential hybrids, SASRec, GRU4Rec and STAR with
content ``side`` or ``prior``: :func:`training.algorithms.history.new_item_scores`) on a request scored from a
history; otherwise (another model, or a fallback) they are left out and counted (``new_items_excluded``). Their
text is embedded by the bundled encoder when first read without an up-to-date vector (at most
:data:`NEW_ITEMS_EMBEDDED_PER_READ` a read; the vectors are stored for every process), and each process keeps its
list of them while the catalogue version holds (:mod:`recsys_site.serving_version`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import islice
from typing import NamedTuple

import numpy as np
import torch
from django.conf import settings
from django.db import connection

from catalog.models import EndUser, Interaction, Item
from recsys_site.errors import ValidationFailed
from recsys_site.serving_version import Kept, catalog_version_get
from scenarios.models import Objective, Scenario
from scenarios.selectors import scenario_item_ids
from training.algorithms.history import History, history_scores, new_item_scores, scores_new_items
from training.artifacts import LoadedModel
from training.embeddings_service import item_embedding_matrix, item_embeddings_refresh

NEW_ITEMS_TTL = 60.0  # seconds a process keeps its list of a scenario's items added after training, at most
# Items added after training whose text a request embeds (at most), for a model that scores them by content: the
# encoder took 17 ms an item (and 12 s to load, once per process) on two cores under a load average of 10, so a
# read pays at most about half a second; a larger batch waits for later reads or `manage.py embed_items`.
NEW_ITEMS_EMBEDDED_PER_READ = 32

# The two reads of every request, written out: building them through the ORM cost more than running them.
_USER_EVENTS_SQL = (
    f"SELECT e.user_id, e.item_id, e.kind, e.value FROM {connection.ops.quote_name(Interaction._meta.db_table)} e"
    f" JOIN {connection.ops.quote_name(EndUser._meta.db_table)} u ON u.id = e.user_id"
    " WHERE u.external_id = %s ORDER BY e.occurred_at DESC, e.id DESC"
)
_ITEM_IDS_SQL = (
    f"SELECT external_id, id FROM {connection.ops.quote_name(Item._meta.db_table)} WHERE external_id = ANY(%s)"
)


class Event(NamedTuple):  # a tuple, not a dataclass: a request builds up to RECSYS_LIVE_HISTORY_LENGTH of them
    item_id: int
    kind: str | None  # None: a session item given without a kind, counted with weight 1
    value: float | None = None  # the event's value (a rating); None for a session item


@dataclass(frozen=True)
class LiveScores:
    """``scores`` ``(n_candidates,)`` over ``candidates`` (the model's items, plus the new items it scored, sorted by
    id); the fallback applied, the history events read, and the new items left out."""

    scores: torch.Tensor
    candidates: LoadedModel
    fallback: str | None
    history_events: int
    new_items_excluded: int


def history_length(loaded: LoadedModel) -> int:
    """How many latest events a request reads: a sequential model's ``max_length``, else the setting."""
    return int(loaded.model.hparams.get("max_length") or settings.RECSYS_LIVE_HISTORY_LENGTH)


@dataclass(frozen=True)
class UserHistory:
    """What serving reads of a user: ``user_id`` (None: no such user, or no event), the latest events that the
    scenario counts (oldest first), and ``seen_item_ids`` ``(n,)`` int64, every item they had an event on (any
    kind), which a list leaves out."""

    user_id: int | None
    events: list[Event]
    seen_item_ids: np.ndarray


def user_history(*, scenario: Scenario, user_external_id: str, length: int) -> UserHistory:
    """The user's events, newest first, in one query on the ``(user, -occurred_at)`` index (joined to the user by
    external id); the latest ``length`` that the scenario counts (its event kinds and minimum value) make the
    history."""
    with connection.cursor() as cursor:
        cursor.execute(_USER_EVENTS_SQL, [user_external_id])
        rows = cursor.fetchall()
    kinds, least = scenario.event_weights or None, scenario.min_value
    counted = (
        Event(item, kind, value)
        for _, item, kind, value in rows
        if (kinds is None or kind in kinds) and (least is None or value >= least)
    )
    events = list(islice(counted, length))  # the latest
    events.reverse()
    return UserHistory(
        user_id=rows[0][0] if rows else None,
        events=events,
        seen_item_ids=np.unique(np.array([row[1] for row in rows], dtype=np.int64)),
    )


def session_item_ids(external_ids: Sequence[str]) -> list[int]:
    """Database ids of a session's items, in order; unknown external ids are refused (ValidationFailed)."""
    with connection.cursor() as cursor:
        cursor.execute(_ITEM_IDS_SQL, [list(set(external_ids))])
        found = dict(cursor.fetchall())
    unknown = [external_id for external_id in dict.fromkeys(external_ids) if external_id not in found]
    if unknown:
        shown = ", ".join(repr(external_id) for external_id in unknown[:10])
        raise ValidationFailed("unknown items", detail={"items": [f"unknown items: {shown}"]})
    return [found[external_id] for external_id in external_ids]


def session_events(*, scenario: Scenario, item_ids: Sequence[int], kinds: Sequence[str] | None) -> list[Event]:
    """An anonymous session's events (oldest first) that the scenario counts: given kinds it does not weigh are left
    out; without kinds every item counts, with weight 1."""
    if kinds is None:
        return [Event(item, None) for item in item_ids]
    weighted = scenario.event_weights or {}
    return [Event(item, kind) for item, kind in zip(item_ids, kinds, strict=True) if not weighted or kind in weighted]


def live_scores(
    *, scenario: Scenario, loaded: LoadedModel, events: list[Event], user_position: int | None, domain: dict
) -> LiveScores:
    """Scores of every candidate after ``events`` (module docstring); ``user_position`` is the user's index in the
    model when it was trained on them, ``domain`` a multi-domain model's ``{"domain": index}`` (else ``{}``)."""
    history = _history(scenario, loaded, events[-history_length(loaded) :])
    scores = history_scores(loaded.model, history, **domain) if len(history) else None
    if scores is not None:
        return _with_new_items(scenario, loaded, scores, history, domain)
    if len(history) and user_position is not None:
        scores = loaded.model.score(np.array([user_position]), **domain)[0]
        return _excluding_new_items(scenario, loaded, scores, "training_history", 0)
    return _excluding_new_items(scenario, loaded, popularity_scores(loaded), "popularity", 0)


def popularity_scores(loaded: LoadedModel) -> torch.Tensor:
    """The fallback's scores: the share of the model's training users who had each item, 0 to 1."""
    users = max(len(loaded.user_ids), 1)
    return torch.from_numpy(loaded.item_popularity.astype(np.float32) / users)


def _history(scenario: Scenario, loaded: LoadedModel, events: list[Event]) -> History:
    """The events on items the model knows, as its item indexes with the scenario's event weights (under the rating
    objective, the events' values, as the model learned them; a session item without one weighs as its kind)."""
    ids = np.fromiter((event.item_id for event in events), dtype=np.int64, count=len(events))
    positions = np.searchsorted(loaded.item_ids, ids).clip(max=max(len(loaded.item_ids) - 1, 0))
    known = loaded.item_ids[positions] == ids if len(loaded.item_ids) else np.zeros(len(ids), dtype=bool)
    weights = scenario.event_weights or {}
    ratings = scenario.objective == Objective.RATING
    values = np.array(
        [
            event.value if ratings and event.value is not None else float(weights.get(event.kind or "", 1.0))
            for event in events
        ],
        dtype=np.float32,
    )
    return History(items=positions[known].astype(np.int64), weights=values[known])


def _excluding_new_items(
    scenario: Scenario, loaded: LoadedModel, scores: torch.Tensor, fallback: str | None, history_events: int
) -> LiveScores:
    excluded = len(_new_items(scenario, loaded)[0])
    return LiveScores(scores, loaded, fallback, history_events, excluded)


def _with_new_items(
    scenario: Scenario, loaded: LoadedModel, scores: torch.Tensor, history: History, domain: dict
) -> LiveScores:
    """Adds the new items the model scores by content; the others (or all, for a model without content) excluded."""
    new_ids, features, present = _new_items(scenario, loaded)
    new_scores = new_item_scores(loaded.model, history, features[present], **domain) if present.any() else None
    if new_scores is None:
        return LiveScores(scores, loaded, None, len(history), len(new_ids))
    item_ids = np.concatenate([loaded.item_ids, new_ids[present]])
    order = np.argsort(item_ids, kind="stable")
    popularity = np.concatenate([loaded.item_popularity, np.zeros(int(present.sum()), dtype=np.float32)])
    candidates = replace(loaded, item_ids=item_ids[order], item_popularity=popularity[order])
    merged = torch.cat([scores, new_scores.float()])[torch.from_numpy(order)]
    return LiveScores(merged, candidates, None, len(history), int((~present).sum()))


# A scenario's items a model does not know, per process: their ids ``(n,)``, text embeddings ``(n, f)`` (only for a
# model that reads content; else ``(n, 0)``) and whether each has one ``(n,)`` bool.
_new_items_kept: Kept[tuple[np.ndarray, np.ndarray, np.ndarray]] = Kept(
    version=catalog_version_get, ttl=NEW_ITEMS_TTL, size=64
)


def _new_items(scenario: Scenario, loaded: LoadedModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ids, text embeddings and present mask of the scenario's items the model does not know.

    Kept while the catalogue version holds (an item created, edited or embedded bumps it; read with the serving
    version, :mod:`recsys_site.serving_version`), at most :data:`NEW_ITEMS_TTL` (the only bound without Redis)."""
    key = (scenario.pk, scenario.updated_at.isoformat(), id(loaded.model))
    return _new_items_kept.get(key, lambda: _new_items_read(scenario, loaded))


def _new_items_read(scenario: Scenario, loaded: LoadedModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    new_ids = np.setdiff1d(scenario_item_ids(scenario=scenario), loaded.item_ids).astype(np.int64)
    if scores_new_items(loaded.model) and len(new_ids):
        features, present = _new_item_embeddings(new_ids)
    else:
        features, present = np.zeros((len(new_ids), 0), dtype=np.float32), np.zeros(len(new_ids), dtype=bool)
    return new_ids, features, present


def _new_item_embeddings(item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The items' text embeddings ``(n, 384)`` and whether each has one ``(n,)``: the first
    :data:`NEW_ITEMS_EMBEDDED_PER_READ` of those without an up-to-date vector are embedded now (the bundled encoder,
    loaded once per process) and stored for every process; the rest wait for the next read or ``embed_items``."""
    item_embeddings_refresh(item_ids=item_ids, limit=NEW_ITEMS_EMBEDDED_PER_READ)
    return item_embedding_matrix(item_ids)


def new_items_cache_clear() -> None:
    _new_items_kept.clear()
