"""Serving recommendations from a scenario's live run, with a per-process model cache.

Web processes keep the few models they serve in memory, keyed by run id: a promotion
changes the live run id, so the next request loads the new model and nothing needs
invalidating. Artifacts are checked against their sha256 before they are used.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from django.conf import settings
from django.db import connection

from catalog.models import EndUser, Item
from recsys_site.errors import Conflict, NotFound, ValidationFailed
from recsys_site.metrics import FALLBACKS, MODEL_CACHE_HITS, MODEL_CACHE_LOADS
from recsys_site.serving_version import Kept, catalog_version_get
from scenarios.models import Scenario
from training.artifact_store import artifact_fetch
from training.artifacts import LoadedModel, artifact_file_stamp, artifact_load, artifact_verify
from training.live import (
    LiveScores,
    UserHistory,
    history_length,
    live_scores,
    session_events,
    session_item_ids,
    user_history,
)
from training.models import RunStatus, TrainingRun
from training.serving_rules import ServingRules, serving_rules

_ITEM_NAMES_SQL = (
    f"SELECT id, external_id, title FROM {connection.ops.quote_name(Item._meta.db_table)} WHERE id = ANY(%s)"
)


@dataclass(frozen=True)
class Recommendation:
    item_id: int
    external_id: str
    title: str
    score: float


@dataclass(frozen=True)
class RecommendationResult:
    request_id: str
    run_id: int
    algorithm: str
    fallback: str | None  # None, "training_history" or "popularity" (training.live)
    items: list[Recommendation]
    history_events: int = 0  # events of the live history the scores came from
    new_items_excluded: int = 0  # items added after training that the model cannot score


@dataclass(frozen=True)
class RatingPrediction:
    item: str  # external id
    rating: float


@dataclass(frozen=True)
class RatingPredictions:
    run_id: int
    predictions: list[RatingPrediction]
    unknown_items: list[str]  # external ids the live model has no index for


@dataclass
class _CachedModel:
    loaded: LoadedModel
    sha256: str
    stamp: tuple  # the files' names, sizes and modification times when last verified
    verified_at: float  # time.monotonic()


class ModelCache:
    """A small LRU of loaded models, keyed by run id; safe to share between threads.

    A cached model is served only while its files look as they did when verified (names, sizes, modification
    times, read on every request) and its run's checksum is the one it was loaded under; it is verified again
    (the full checksum) at least every ``RECSYS_ARTIFACT_VERIFY_SECONDS``. So an artifact altered or deleted on
    disk is refused by every process that had it loaded, at the latest after that interval.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._models: OrderedDict[int, _CachedModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, run: TrainingRun) -> LoadedModel:
        directory, name = Path(run.artifact_path), f"the artifact of run {run.pk}"
        with self._lock:
            cached = self._models.pop(run.pk, None)  # put back below only if it still holds
        artifact_fetch(directory=directory)  # from the shared storage when this host lacks it
        stamp = artifact_file_stamp(directory, name=name)
        if cached is None or cached.sha256 != run.artifact_sha256 or cached.stamp != stamp:
            MODEL_CACHE_LOADS.inc()
            cached = _CachedModel(
                loaded=artifact_load(directory=directory, sha256=run.artifact_sha256, name=name),
                sha256=run.artifact_sha256,
                stamp=stamp,
                verified_at=time.monotonic(),
            )
        else:
            MODEL_CACHE_HITS.inc()
            if time.monotonic() - cached.verified_at > settings.RECSYS_ARTIFACT_VERIFY_SECONDS:
                artifact_verify(directory=directory, sha256=run.artifact_sha256, name=name)
                cached.verified_at = time.monotonic()
        with self._lock:
            self._models[run.pk] = cached
            while len(self._models) > self.size:
                self._models.popitem(last=False)
        return cached.loaded

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


model_cache = ModelCache(settings.RECSYS_MODEL_CACHE_SIZE)


def recommendations_for_user(
    *, scenario: Scenario, user_external_id: str, k: int | None = None
) -> RecommendationResult:
    """Top-k items of the scenario's live run for a user, from their live history (training.live)."""
    run = _live_run(scenario)
    loaded = model_cache.get(run)
    history = user_history(scenario=scenario, user_external_id=user_external_id, length=history_length(loaded))
    return _result(scenario, run, *_user_scores(scenario, loaded, history), k or scenario.default_k)


def recommendations_for_session(
    *, scenario: Scenario, item_external_ids: list[str], kinds: list[str] | None = None, k: int | None = None
) -> RecommendationResult:
    """Top-k items of the scenario's live run for an anonymous session's items (oldest first)."""
    run = _live_run(scenario)
    loaded = model_cache.get(run)
    item_ids = session_item_ids(item_external_ids)
    events = session_events(scenario=scenario, item_ids=item_ids, kinds=kinds)
    live = live_scores(
        scenario=scenario, loaded=loaded, events=events, user_position=None, domain=_domain(scenario, loaded)
    )
    scores = live.scores.clone()
    if scenario.exclude_seen:
        scores[torch.from_numpy(np.isin(live.candidates.item_ids, item_ids))] = -torch.inf
    rules = _rules(scenario, live.candidates)
    return _result(scenario, run, replace(live, scores=rules.apply(scores)), rules, k or scenario.default_k)


def rating_predictions(*, scenario: Scenario, user_external_id: str, item_external_ids: list[str]) -> RatingPredictions:
    """The live run's predicted ratings of a user for items (external ids, in the order given); items the model
    does not know are listed apart. The user must be one the model learned from."""
    run = _live_run(scenario)
    loaded = model_cache.get(run)
    if not loaded.model.predicts_ratings:
        raise Conflict(f"the live model of {scenario.slug} ({run.algorithm}) does not predict ratings")
    user = EndUser.objects.filter(external_id=user_external_id).only("id").first()
    if user is None:
        raise ValidationFailed("unknown user", detail={"user": [f"no end user has the id {user_external_id!r}"]})
    position = _dense_index(loaded.user_ids, user.pk)
    if position is None:
        raise ValidationFailed(
            "user not in the model",
            detail={"user": [f"user {user_external_id!r} has no ratings in the live model of {scenario.slug}"]},
        )
    database_ids = dict(Item.objects.filter(external_id__in=item_external_ids).values_list("external_id", "id"))
    positions = {
        external: _dense_index(loaded.item_ids, database_ids[external])
        for external in item_external_ids
        if external in database_ids
    }
    known = [external for external in item_external_ids if positions.get(external) is not None]
    ratings = loaded.model.predict_ratings(np.full(len(known), position), np.array([positions[e] for e in known]))
    return RatingPredictions(
        run_id=run.pk,
        predictions=[RatingPrediction(e, float(r)) for e, r in zip(known, ratings.tolist(), strict=True)],
        unknown_items=[external for external in item_external_ids if positions.get(external) is None],
    )


def _rules(scenario: Scenario, candidates: LoadedModel) -> ServingRules:
    return serving_rules(scenario=scenario, item_ids=candidates.item_ids)


def _result(
    scenario: Scenario, run: TrainingRun, live: LiveScores, rules: ServingRules, k: int
) -> RecommendationResult:
    if live.fallback:
        FALLBACKS.labels(scenario.slug, live.fallback).inc()
    return RecommendationResult(
        request_id=uuid.uuid4().hex,
        run_id=run.pk,
        algorithm=run.algorithm,
        fallback=live.fallback,
        items=_top_items(live.scores, live.candidates, k, rules),
        history_events=live.history_events,
        new_items_excluded=live.new_items_excluded,
    )


@dataclass(frozen=True)
class SampleItem:
    item_id: int
    external_id: str
    title: str
    categories: list[str]
    score: float
    because: list[str]  # titles of the history items that contributed most, when the model can say


def sample_recommendations(*, scenario: Scenario, run: TrainingRun, user: EndUser, k: int) -> list[SampleItem]:
    """Top-k of any succeeded run for a user, with "because you liked …" where the model explains itself."""
    if run.status != RunStatus.SUCCEEDED:
        raise Conflict(f"run {run.pk} is {run.status}")
    loaded = model_cache.get(run)
    user_events = user_history(scenario=scenario, user_external_id=user.external_id, length=history_length(loaded))
    live, rules = _user_scores(scenario, loaded, user_events)
    top = _top_items(live.scores, live.candidates, k, rules)
    history = _seen_positions(user_events.seen_item_ids, loaded)
    reasons = _explanations(loaded, history, [_dense_index(loaded.item_ids, r.item_id) for r in top])
    items = Item.objects.in_bulk([r.item_id for r in top] + [int(loaded.item_ids[p]) for p in history])

    def title(position: int) -> str:
        item = items[int(loaded.item_ids[position])]
        return item.title or item.external_id

    return [
        SampleItem(
            item_id=r.item_id,
            external_id=r.external_id,
            title=r.title,
            categories=items[r.item_id].categories,
            score=r.score,
            because=[title(p) for p in reasons.get(r.item_id, [])],
        )
        for r in top
    ]


def _explanations(loaded: LoadedModel, history: np.ndarray, positions: list[int | None]) -> dict[int, list[int]]:
    """For each recommended item id, up to three history positions with the largest positive contribution."""
    valid = [p for p in positions if p is not None]
    if not loaded.model.explainable or not len(history) or not valid:
        return {}
    contributions = loaded.model.explain(history, np.asarray(valid))  # (len(valid), len(history))
    reasons = {}
    for row, position in enumerate(valid):
        order = np.argsort(-contributions[row])[:3]
        reasons[int(loaded.item_ids[position])] = [int(history[j]) for j in order if contributions[row, j] > 0]
    return reasons


def _user_scores(scenario: Scenario, loaded: LoadedModel, history: UserHistory) -> tuple[LiveScores, ServingRules]:
    """Masked scores of every candidate for a user, from their live history (training.live), and the rules that
    masked them (which choose the list too)."""
    position = _dense_index(loaded.user_ids, history.user_id) if history.user_id is not None else None
    live = live_scores(
        scenario=scenario,
        loaded=loaded,
        events=history.events,
        user_position=position,
        domain=_domain(scenario, loaded),
    )
    scores = live.scores.clone()
    if scenario.exclude_seen:
        scores[torch.from_numpy(_seen_positions(history.seen_item_ids, live.candidates))] = -torch.inf
    rules = _rules(scenario, live.candidates)
    return replace(live, scores=rules.apply(scores)), rules


def similar_items(*, scenario: Scenario, item_external_id: str, k: int | None = None) -> RecommendationResult:
    """Items most similar to one item under the scenario's live run."""
    run = _live_run(scenario)
    loaded = model_cache.get(run)
    item = Item.objects.filter(external_id=item_external_id).only("id").first()
    if item is None:
        raise NotFound(f"unknown item {item_external_id!r}")
    position = _dense_index(loaded.item_ids, item.pk)
    if position is None:
        raise NotFound(f"item {item_external_id!r} is not in the live model of {scenario.slug} (no training events)")
    try:
        scores = loaded.model.similar_items(np.array([position]))[0].clone()
    except NotImplementedError as error:
        raise Conflict(f"the live model of {scenario.slug} cannot find similar items: {error}") from None
    scores[position] = -torch.inf
    rules = _rules(scenario, loaded)
    return RecommendationResult(
        request_id=uuid.uuid4().hex,
        run_id=run.pk,
        algorithm=run.algorithm,
        fallback=None,
        items=_top_items(rules.apply(scores), loaded, k or scenario.default_k, rules),
    )


def _domain(scenario: Scenario, loaded: LoadedModel) -> dict:
    """For a multi-domain model (STAR) trained on a group, the member scenario's domain."""
    names = getattr(loaded.model, "domain_names", None) or []
    return {"domain": names.index(scenario.slug)} if scenario.slug in names else {}


def _live_run(scenario: Scenario) -> TrainingRun:
    run = scenario.live_run  # loaded with the scenario where it is served (training.serving_scenarios)
    if run is None:
        raise Conflict(f"scenario {scenario.slug} has no live model yet: train a run and promote it")
    if run.status != RunStatus.SUCCEEDED:
        raise Conflict(f"the live run {run.pk} of {scenario.slug} is {run.status}")
    return run


def _dense_index(ids: np.ndarray, database_id: int) -> int | None:
    position = int(np.searchsorted(ids, database_id))
    return position if position < len(ids) and ids[position] == database_id else None


def _seen_positions(seen: np.ndarray, loaded: LoadedModel) -> np.ndarray:
    """Positions in ``loaded``'s items of the item ids ``seen`` that it has."""
    positions = np.searchsorted(loaded.item_ids, seen).clip(max=len(loaded.item_ids) - 1)
    return positions[loaded.item_ids[positions] == seen]


def _top_items(scores: torch.Tensor, loaded: LoadedModel, k: int, rules: ServingRules) -> list[Recommendation]:
    values, positions = rules.top(scores, k)
    ids = [int(loaded.item_ids[p]) for p in positions]
    names = item_names.get(ids)
    return [
        Recommendation(item_id=i, external_id=names[i][0], title=names[i][1], score=float(v))
        for i, v in zip(ids, values, strict=True)
        if i in names
    ]


class ItemNames:
    """Items' (external id, title) by id, kept while the catalogue's version holds (items created, edited or deleted
    through the API, an import, an upsert or the admin bump it) and for a minute at most (the only bound for raw SQL,
    or without Redis): a request reads from the database only the items it is the first to name since then."""

    def __init__(self, *, ttl: float = 60.0, limit: int = 200_000) -> None:
        self.limit = limit
        self._kept: Kept[dict[int, tuple[str, str]]] = Kept(version=catalog_version_get, ttl=ttl, size=1)

    def get(self, ids: list[int]) -> dict[int, tuple[str, str]]:
        """The names of those of ``ids`` that exist."""
        known = self._kept.get("names", dict)  # filled as requests name items, while the version holds
        if len(known) > self.limit:
            self._kept.clear()
            known = self._kept.get("names", dict)
        names = {pk: known[pk] for pk in ids if pk in known}
        missing = [pk for pk in ids if pk not in names]
        if missing:
            read = {pk: (external_id, title) for pk, external_id, title in _item_names(missing)}
            names.update(read)
            known.update(read)
        return names

    def clear(self) -> None:
        self._kept.clear()


item_names = ItemNames()


def _item_names(ids: list[int]) -> list[tuple[int, str, str]]:
    """(id, external id, title) of the items ``ids`` that exist: three columns, no model objects, written out (the
    ORM's query building cost more than the query)."""
    with connection.cursor() as cursor:
        cursor.execute(_ITEM_NAMES_SQL, [ids])
        return cursor.fetchall()
