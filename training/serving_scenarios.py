"""The scenarios a web process serves, with their live runs, kept while the serving version holds.

A request reads one value from Redis (``recsys_site.serving_version``) instead of the scenario and run rows;
a promotion, rollback, scenario edit or rewritten artifact changes the value once committed, so every
process reads the rows again on its next request. While Redis cannot be reached nothing is kept.
"""

from __future__ import annotations

import threading

from recsys_site.errors import NotFound
from recsys_site.serving_version import serving_version_get
from scenarios.models import Scenario

_kept: dict[str, tuple[str, Scenario]] = {}
_lock = threading.Lock()


def serving_scenario(*, slug: str) -> Scenario:
    """The scenario ``slug`` with its live run loaded; raises NotFound for an unknown slug."""
    version = serving_version_get()  # read before the rows, so a change committed meanwhile is seen next time
    with _lock:
        kept = _kept.get(slug)
    if version is not None and kept is not None and kept[0] == version:
        return kept[1]
    scenario = Scenario.objects.select_related("live_run").filter(slug=slug).first()
    if scenario is None:
        raise NotFound(f"no scenario {slug!r}")
    if version is not None:
        with _lock:
            if len(_kept) > 1000:  # slugs of deleted scenarios linger otherwise
                _kept.clear()
            _kept[slug] = (version, scenario)
    return scenario


def serving_scenarios_forget() -> None:
    with _lock:
        _kept.clear()
