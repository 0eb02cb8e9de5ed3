"""What a scenario may serve from a model's candidates: the candidate mask, boosts and per-category caps.

Prepared once per (scenario version, catalogue version, candidate items) in each process and kept for a minute
at most, so a request pays one tensor operation for the item filter and the serving policy, not a database query.
A changed scenario is seen at once (its ``updated_at`` is part of the key), and so are items deactivated or
recategorised through the API, an import or an upsert (they bump the catalogue version,
:mod:`recsys_site.serving_version`); other changes (the admin, raw SQL) within the minute.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from catalog.models import Item
from recsys_site.serving_version import Kept, catalog_version_get
from scenarios.models import Scenario
from scenarios.policy import ServingPolicy
from scenarios.selectors import scenario_item_ids

RULES_TTL = 60.0
RULES_KEPT = 64


@dataclass(frozen=True)
class ServingRules:
    refused: torch.Tensor  # (n_items,) bool: fails the scenario's item filter or the policy's exclusions
    boost: torch.Tensor | None  # (n_items,) float32 added to the 0–1 rescaled scores; None without boosts
    item_categories: list[tuple[str, ...]] | None  # per position, only when a per-category cap applies
    max_per_category: int | None

    def apply(self, scores: torch.Tensor) -> torch.Tensor:
        """``scores`` ``(n_items,)`` with refused items at -inf and boosts added (in place; returned)."""
        scores.masked_fill_(self.refused, -torch.inf)
        if self.boost is not None:
            finite = torch.isfinite(scores)
            if finite.any():
                low, high = scores[finite].min(), scores[finite].max()
                scores[finite] = (scores[finite] - low) / (high - low if high > low else 1.0) + self.boost[finite]
        return scores

    def top(self, scores: torch.Tensor, k: int) -> tuple[list[float], list[int]]:
        """Scores and positions of the best ``k`` finite items, at most ``max_per_category`` of a category."""
        k = min(k, int(torch.isfinite(scores).sum()))
        if k <= 0:
            return [], []
        if self.max_per_category is None or self.item_categories is None:
            values, positions = torch.topk(scores, k)
            return values.tolist(), positions.tolist()
        order = torch.argsort(scores, descending=True).tolist()
        counts: Counter[str] = Counter()
        chosen: list[int] = []
        for position in order:
            if not torch.isfinite(scores[position]):
                break
            categories = self.item_categories[position]
            if any(counts[name] >= self.max_per_category for name in categories):
                continue
            chosen.append(position)
            counts.update(categories)
            if len(chosen) == k:
                break
        return [float(scores[p]) for p in chosen], chosen


_rules: Kept[ServingRules] = Kept(version=catalog_version_get, ttl=RULES_TTL, size=RULES_KEPT)


def serving_rules(*, scenario: Scenario, item_ids: np.ndarray) -> ServingRules:
    """The scenario's rules over the candidates ``item_ids`` ``(n_items,)``, from this process's cache when fresh.

    Keyed by the ids' content, not the array: the candidates of a model that scores new items are rebuilt
    per request (hashing them costs microseconds; preparing the rules costs queries).
    """
    key = (scenario.pk, scenario.updated_at.isoformat(), len(item_ids), hash(item_ids.tobytes()))
    return _rules.get(key, lambda: serving_rules_prepare(scenario=scenario, item_ids=item_ids))


def serving_rules_clear() -> None:
    _rules.clear()


def serving_rules_prepare(*, scenario: Scenario, item_ids: np.ndarray) -> ServingRules:
    """Build the rules for the model items ``item_ids`` ``(n_items,)`` (database ids, sorted)."""
    policy = ServingPolicy.from_stored(scenario.serving_policy)
    allowed = np.isin(item_ids, scenario_item_ids(scenario=scenario))
    if policy == ServingPolicy():
        return ServingRules(torch.from_numpy(~allowed), None, None, None)
    facts = _item_facts(item_ids)
    allowed &= ~_refused(policy, facts)
    boost = None
    if policy.boost_categories:
        weights = [sum(policy.boost_categories.get(name, 0.0) for name in f[2]) for f in facts]
        boost = torch.tensor(weights, dtype=torch.float32)
    capped = policy.max_per_category is not None
    return ServingRules(
        refused=torch.from_numpy(~allowed),
        boost=boost,
        item_categories=[tuple(f[2]) for f in facts] if capped else None,
        max_per_category=policy.max_per_category,
    )


def _item_facts(item_ids: np.ndarray) -> list[tuple[str, dt.datetime | None, list[str]]]:
    """(external id, created at, categories) per model position; an item deleted since training has none."""
    rows = {
        pk: (external_id, created_at, categories if isinstance(categories, list) else [])
        for pk, external_id, created_at, categories in Item.objects.filter(pk__in=item_ids.tolist()).values_list(
            "pk", "external_id", "created_at", "categories"
        )
    }
    return [rows.get(int(pk), ("", None, [])) for pk in item_ids]


def _refused(policy: ServingPolicy, facts: list[tuple[str, dt.datetime | None, list[str]]]) -> np.ndarray:
    """(n_items,) bool: items the policy's exclusions remove."""
    items = set(policy.exclude_items)
    categories = set(policy.exclude_categories)
    cutoff = (
        dt.datetime.combine(policy.exclude_older_than, dt.time(), tzinfo=dt.UTC) if policy.exclude_older_than else None
    )
    return np.array(
        [
            external_id in items
            or bool(categories.intersection(names))
            or (cutoff is not None and created_at is not None and created_at < cutoff)
            for external_id, created_at, names in facts
        ],
        dtype=bool,
    )
