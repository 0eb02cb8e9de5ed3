"""One value in Redis that changes whenever what a scenario serves changes (promotion, rollback, scenario edit,
rewritten artifact). Web processes keep the scenario and live run they serve while it holds, so a request pays
one Redis read instead of database queries, and every process sees a change on its next request.
"""

from __future__ import annotations

import logging
import uuid

from django.core.cache import cache
from django.db import transaction

KEY = "serving-version"
logger = logging.getLogger(__name__)


def serving_version_get() -> str | None:
    """The current version, or None when it is unknown (never bumped, or Redis unreachable): then nothing is kept."""
    try:
        return cache.get(KEY)
    except Exception:
        logger.warning("serving version unreadable; serving from the database", exc_info=True)
        return None


def serving_version_bump() -> None:
    """Change the version once the current transaction commits (a process reading before then sees the old rows)."""
    transaction.on_commit(_bump)


def _bump() -> None:
    # A fresh random value, not a counter: after Redis loses the key, a counter would start again at numbers
    # that processes still hold beside old rows.
    try:
        cache.set(KEY, uuid.uuid4().hex, timeout=None)
    except Exception:
        # Without the key, processes keep nothing (see serving_version_get), so dropping it is the safe way out.
        logger.warning("serving version not bumped; dropping it", exc_info=True)
        try:
            cache.delete(KEY)
        except Exception:
            logger.error("serving version could not be dropped either", exc_info=True)
