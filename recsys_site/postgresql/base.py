"""Django's PostgreSQL backend, but for how a kept connection is checked before a request reuses it.

Django's check (``CONN_HEALTH_CHECKS``) sends ``SELECT 1`` at each request's first query: a round trip on every
request. Between requests a kept connection is idle and the server sends it nothing, unless it is going away (the
session was terminated, the server shut down or restarted: the server writes its goodbye, or the socket closes).
So an idle connection whose socket has something to read, or has hung up, is not usable; one with nothing to read
is, with no query. A connection in any other state (in a transaction, in error) is checked Django's way.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed:
            return False
        if connection.info.transaction_status != TransactionStatus.IDLE:
            return super().is_usable()
        try:
            poller = select.poll()
            poller.register(connection.fileno(), select.POLLIN | select.POLLPRI)
            return not poller.poll(0)  # readable, hung up or in error: the server is gone or going
        except (OSError, ValueError):
            return False
