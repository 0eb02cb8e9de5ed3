"""What the broker holds: the ids of the task messages waiting in or reserved from its queues, and which queues
have a consumer. The sweeper uses both to tell a lost message from one that is only waiting its turn."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from functools import lru_cache

import redis
from django.conf import settings
from kombu.exceptions import OperationalError as BrokerUnavailable
from redis.exceptions import RedisError

from recsys_site.celery import app

logger = logging.getLogger(__name__)

# kombu's Redis transport: one list per queue and priority step, and a hash of the messages workers reserved.
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
UNACKED_KEY = "unacked"
CONSUMER_REPLY_SECONDS = 1.0


def broker_is_redis() -> bool:
    return settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://", "unix://"))


def broker_task_ids(queues: Iterable[str]) -> set[str] | None:
    """Ids of the task messages waiting in ``queues`` or reserved by a worker.

    ``None`` when that cannot be known: a broker other than Redis, or a Redis that does not answer.
    """
    if not broker_is_redis():
        return None
    try:
        client = _redis()
        raw = [message for queue in queues for key in _queue_keys(queue) for message in client.lrange(key, 0, -1)]
        reserved = [json.loads(entry)[0] for entry in client.hvals(UNACKED_KEY)]
    except (RedisError, OSError, ValueError) as error:
        logger.warning("cannot read the broker's queues: %s", error)
        return None
    return {_task_id(message) for message in [*map(json.loads, raw), *reserved]} - {""}


def consumed_queues() -> set[str] | None:
    """Names of the queues that at least one live worker consumes.

    ``None`` when that cannot be known: the broker does not answer, or it is one whose workers cannot be asked
    (the demo's filesystem transport carries no broadcast).
    """
    if not broker_is_redis():
        return None
    try:
        replies = app.control.inspect(timeout=CONSUMER_REPLY_SECONDS).active_queues() or {}
    except (BrokerUnavailable, RedisError, OSError) as error:
        logger.warning("cannot ask the workers which queues they consume: %s", error)
        return None
    return {queue["name"] for queues in replies.values() for queue in queues}


def _queue_keys(queue: str) -> list[str]:
    return [queue if step == 0 else f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS]


def _task_id(message: object) -> str:
    headers = message.get("headers") if isinstance(message, dict) else None
    return str(headers.get("id", "")) if isinstance(headers, dict) else ""


@lru_cache(maxsize=4)
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)


def _redis() -> redis.Redis:
    return _client_for(settings.CELERY_BROKER_URL)
