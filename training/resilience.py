"""Surviving a database blip on a worker: writes of progress and heartbeats are retried with backoff.

A connection killed under a worker (a failover, ``pg_terminate_backend``, a restarted server) fails the next
query with ``OperationalError`` and leaves Django's connection unusable; closing it lets the retry open a new
one. Only these connection errors are retried; anything else is the work failing and propagates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)

T = TypeVar("T")
TRANSIENT_DATABASE_ERRORS = (OperationalError, InterfaceError)


def with_database_retry(write: Callable[[], T], *, what: str, attempts: int | None = None) -> T:
    """Call ``write``; on a connection error close the connection and try again after 0.5, 1, 2, … s.

    Gives up after ``attempts`` tries (``RECSYS_DB_RETRY_ATTEMPTS``), raising the last error.
    """
    attempts = attempts or settings.RECSYS_DB_RETRY_ATTEMPTS
    delay = 0.5
    for attempt in range(1, attempts + 1):
        try:
            return write()
        except TRANSIENT_DATABASE_ERRORS as error:
            if attempt == attempts or connection.in_atomic_block:
                raise
            logger.warning(
                "%s: database unavailable (%s); retry %s of %s in %.1f s", what, error, attempt, attempts - 1, delay
            )
            connection.close()
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
    raise AssertionError("unreachable")
