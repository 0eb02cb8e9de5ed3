"""The beat scheduler of the project: django-celery-beat's database schedules, plus the sweeper on its tick.

The sweep runs in the beat process itself rather than as a task, so it needs no worker: with every worker
dead (or only ``-Q gpu`` ones deployed) lost runs are still failed and lost messages still sent again. A
failed sweep (the database or the broker is away) is logged and tried again on the next tick; beat goes on.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django_celery_beat.schedulers import DatabaseScheduler
from kombu.exceptions import OperationalError as BrokerUnavailable
from redis.exceptions import RedisError

from training.sweeper import QueueWatch, sweep

logger = logging.getLogger(__name__)

SWEEP_ERRORS = (DatabaseError, BrokerUnavailable, RedisError, OSError)


class SweepingScheduler(DatabaseScheduler):
    """Runs :func:`training.sweeper.sweep` every ``RECSYS_SWEEP_SECONDS`` between the scheduled tasks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.watch = QueueWatch()
        self.next_sweep = 0.0

    def tick(self, *args: Any, **kwargs: Any) -> float:
        try:
            delay = super().tick(*args, **kwargs)
        except DatabaseError as error:
            logger.warning("beat could not read its schedule (%s); trying again", error)
            close_old_connections()
            delay = float(settings.RECSYS_SWEEP_SECONDS)
        if time.monotonic() >= self.next_sweep:
            self._sweep()
            self.next_sweep = time.monotonic() + settings.RECSYS_SWEEP_SECONDS
        return max(0.1, min(delay, self.next_sweep - time.monotonic()))

    def _sweep(self) -> None:
        try:
            sweep(watch=self.watch)
        except SWEEP_ERRORS as error:
            logger.warning("sweep failed (%s); the next tick tries again", error)
            close_old_connections()
        except Exception:  # a bug in one sweep must not stop beat, and with it the retrain schedules
            logger.exception("sweep failed; the next tick tries again")
            close_old_connections()
