"""A dependency that is away for a moment (the database dropped the connection, Redis restarts) answers
503 with ``Retry-After``, not 500: the client should try again, and nothing was half-written (each request's
writes are one transaction, or none). A page address with a NUL character answers 400: PostgreSQL cannot
compare text holding one."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from kombu.exceptions import OperationalError as BrokerUnavailable
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

UNAVAILABLE = (OperationalError, InterfaceError, BrokerUnavailable, RedisConnectionError, RedisTimeoutError)


class ServiceUnavailableMiddleware:
    """Turns a connection error raised by a view into ``503 Service Unavailable`` with ``Retry-After``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, UNAVAILABLE):
            return None
        logger.warning("%s %s: a service is unavailable: %s", request.method, request.path, exception)
        _close_broken_connections()
        message = "A service this request needs is unavailable for a moment; try again shortly."
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse({"detail": message, "errors": {}}, status=503)
        else:
            response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(settings.RECSYS_RETRY_AFTER_SECONDS)
        return response


def _close_broken_connections() -> None:
    """Drop connections that failed, so the next request opens a new one instead of failing again."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


class NulQueryMiddleware:
    """Answers ``400`` to a page request whose query string holds a NUL character (``%00``), which PostgreSQL
    refuses in any text it compares. The API checks its own parameters and answers in its JSON error format."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api/") and _holds_nul(request):
            message = "The address holds a NUL character (%00), which no page can look up; remove it and try again."
            return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


def _holds_nul(request: HttpRequest) -> bool:
    return any("\x00" in name or any("\x00" in value for value in values) for name, values in request.GET.lists())
