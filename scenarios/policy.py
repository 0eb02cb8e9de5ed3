"""A scenario's serving policy: rules applied to every list it serves, after the model has scored.

Stored as one JSON object on the scenario; every key is optional:

- ``exclude_items``: external ids of items never served;
- ``exclude_categories``: categories never served (the slice's own filter still applies first);
- ``max_per_category``: at most this many items of one category in a list (an item counts for each
  of its categories);
- ``boost_categories``: category → weight between -1 and 1. Scores are rescaled to 0–1 over the
  candidates, then each item gains the weights of its categories: 1 lifts a category above every
  other item, -1 buries it below;
- ``exclude_older_than``: an ISO date; items added to the catalogue before it are not served.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_LISTED = 10_000
MAX_PER_CATEGORY = 1000
POLICY_KEYS = ("exclude_items", "exclude_categories", "max_per_category", "boost_categories", "exclude_older_than")


@dataclass(frozen=True)
class ServingPolicy:
    exclude_items: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    max_per_category: int | None = None
    boost_categories: Mapping[str, float] = field(default_factory=dict)
    exclude_older_than: dt.date | None = None

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any] | None) -> ServingPolicy:
        """The policy of a scenario's stored (already validated) JSON."""
        stored = stored or {}
        older = stored.get("exclude_older_than")
        return cls(
            exclude_items=tuple(stored.get("exclude_items") or ()),
            exclude_categories=tuple(stored.get("exclude_categories") or ()),
            max_per_category=stored.get("max_per_category"),
            boost_categories=dict(stored.get("boost_categories") or {}),
            exclude_older_than=dt.date.fromisoformat(older) if older else None,
        )

    @property
    def categories(self) -> set[str]:
        return set(self.exclude_categories) | set(self.boost_categories)


def serving_policy_errors(value: Any) -> dict[str, list[str]]:
    """Field errors of a policy object, keyed ``serving_policy.<key>``; empty when it is valid.

    Category and item names are checked against the catalogue by the caller (they need the database).
    """
    if not isinstance(value, Mapping):
        return {"serving_policy": ["must be an object (see the documentation for its keys)"]}
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(value) - set(POLICY_KEYS))
    if unknown:
        errors["serving_policy"] = [f"unknown keys {', '.join(map(repr, unknown))}; known: {', '.join(POLICY_KEYS)}"]
    checks = {
        "exclude_items": _check_names,
        "exclude_categories": _check_names,
        "max_per_category": _check_cap,
        "boost_categories": _check_boosts,
        "exclude_older_than": _check_date,
    }
    for key, check in checks.items():
        message = check(value[key]) if value.get(key) is not None else None
        if message:
            errors[f"serving_policy.{key}"] = [message]
    return errors


def _check_names(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(name, str) and name.strip() for name in value):
        return "must be a list of non-empty names"
    if len(value) > MAX_LISTED:
        return f"at most {MAX_LISTED} names"
    return None


def _check_cap(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PER_CATEGORY:
        return f"must be a whole number between 1 and {MAX_PER_CATEGORY}"
    return None


def _check_boosts(value: Any) -> str | None:
    if not isinstance(value, Mapping) or not all(isinstance(name, str) and name.strip() for name in value):
        return "must be an object of category → weight"
    bad = [
        name
        for name, weight in value.items()
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not -1 <= weight <= 1 or weight == 0
    ]
    return f"weights must be numbers between -1 and 1, not 0 (bad: {', '.join(bad)})" if bad else None


def _check_date(value: Any) -> str | None:
    if isinstance(value, str) and len(value) == 10:
        try:
            dt.date.fromisoformat(value)
            return None
        except ValueError:
            pass
    return "must be a date written YYYY-MM-DD"
