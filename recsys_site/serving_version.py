"""Values in Redis that change whenever what a web process keeps in memory changes, so it keeps what it read while
they hold and sees a change on its next request, paying one Redis read instead of database queries:

- the serving version: a promotion, rollback, scenario edit or rewritten artifact (scenarios and live runs);
- the catalogue version: items created, edited or deleted, and item text embeddings stored (the items added
  after a model's training, which it scores by their content or counts as excluded);
- the access version: an API token, an account, a role or a permission saved or deleted (the tokens an API
  request authenticates with, :mod:`accounts.authentication`).

All are read in one Redis call and reused for ``RECSYS_SERVING_VERSION_MS`` (a quarter of a second by default): at a
hundred requests a second a process reads them a few times a second, not twice a request. A change made through this
process is seen at once; one made elsewhere within that time. A value Redis does not hold (never set, or lost with its
data: a restart without persistence, an eviction) is set afresh at the next read, to a value no process holds, so
every process drops what it kept and keeps again; only while Redis cannot be reached is the version unknown.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

KEY = "serving-version"
CATALOG_KEY = "catalog-version"
ACCESS_KEY = "access-version"
_KEYS = [KEY, CATALOG_KEY, ACCESS_KEY]
logger = logging.getLogger(__name__)
_read: dict[str, str | None] = {}  # the values as last read, and when
_read_at = [-float("inf")]
_lock = threading.Lock()


def serving_version_get() -> str | None:
    """The current version, or None when it is unknown (Redis unreachable): then nothing is kept."""
    return _get(KEY)


def serving_version_bump() -> None:
    """Change the version once the current transaction commits (a process reading before then sees the old rows)."""
    transaction.on_commit(lambda: _bump(KEY))


def catalog_version_get() -> str | None:
    """The catalogue's version, or None when it is unknown (Redis unreachable)."""
    return _get(CATALOG_KEY)


def catalog_version_bump() -> None:
    """Change the catalogue's version once the current transaction commits."""
    transaction.on_commit(lambda: _bump(CATALOG_KEY))


def access_version_get() -> str | None:
    """The version of the accounts, tokens and permissions, or None when it is unknown."""
    return _get(ACCESS_KEY)


def access_version_bump() -> None:
    """Change the access version once the current transaction commits."""
    transaction.on_commit(lambda: _bump(ACCESS_KEY))


def _get(key: str) -> str | None:
    now = time.monotonic()
    with _lock:
        if now - _read_at[0] < settings.RECSYS_SERVING_VERSION_MS / 1000:
            return _read.get(key)
    try:
        values = cache.get_many(_KEYS)
        if missing := [name for name in _KEYS if name not in values]:
            for name in missing:
                cache.add(name, uuid.uuid4().hex, timeout=None)  # unless another process just set it
            values.update(cache.get_many(missing))
    except Exception:
        logger.warning("%s unreadable; serving from the database", key, exc_info=True)
        values = {}
    with _lock:
        _read.clear()
        _read.update(values)
        _read_at[0] = now
    return values.get(key)


def _forget() -> None:
    """Read the values again at the next request (after this process changed one)."""
    with _lock:
        _read_at[0] = -float("inf")


def _bump(key: str) -> None:
    # A fresh random value, not a counter: after Redis loses the key, a counter would start again at numbers
    # that processes still hold beside old rows.
    try:
        cache.set(key, uuid.uuid4().hex, timeout=None)
        _forget()
    except Exception:
        # A dropped key is set afresh at the next read, to a value no process holds: the safe way out.
        logger.warning("%s not bumped; dropping it", key, exc_info=True)
        try:
            cache.delete(key)
        except Exception:
            logger.error("%s could not be dropped either", key, exc_info=True)
        _forget()


V = TypeVar("V")


class Kept(Generic[V]):
    """Values this process computed, each kept while the version it was computed under (``version()``) holds and
    ``ttl`` seconds at most (the only bound for changes written around the services): the ``size`` most recently
    computed. Where the version is unknown (Redis unreachable), values are kept for ``ttl`` only
    with ``unversioned``, and else computed at every call."""

    def __init__(self, *, version: Callable[[], str | None], ttl: float, size: int, unversioned: bool = True) -> None:
        self.ttl, self.size, self.version, self.unversioned = ttl, size, version, unversioned
        self._kept: OrderedDict[Hashable, tuple[str | None, float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The value kept for ``key``, or ``compute()``'s, kept from now on."""
        version = self.version()  # read first: a change made while computing is not taken for this version
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None and kept[0] == version and time.monotonic() - kept[1] <= self.ttl:
            return kept[2]
        value = compute()
        if version is None and not self.unversioned:
            return value
        with self._lock:
            self._kept[key] = (version, time.monotonic(), value)
            self._kept.move_to_end(key)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
