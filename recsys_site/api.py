"""API plumbing shared by the apps: the exception handler that maps domain errors to HTTP, and the API root."""

from typing import Any

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db.models import ProtectedError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import exception_handler as drf_exception_handler

from recsys_site.errors import DomainError

# A refusal names at most this many of the rows that block a deletion.
MAX_NAMED_BLOCKERS = 20


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error answers ``{"detail": "one sentence", "errors": {field or batch index: [messages]}}``."""
    if isinstance(exc, DomainError):
        return Response(_domain_error_body(exc), status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):  # raised by Django's form parsing, before any view code runs
        return Response({"detail": f"The request body is too large: {exc}", "errors": {}}, status=413)
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):  # Django's form parsing too
        return Response({"detail": f"The request has too many form fields: {exc}", "errors": {}}, status=400)
    if isinstance(exc, ProtectedError):
        return Response({"detail": _blocked_deletion_message(exc), "errors": {}}, status=status.HTTP_409_CONFLICT)
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = error_body(response.data)
    return response


def error_body(data: Any) -> dict[str, Any]:
    """DRF's error data (a detail, a field map or a list of messages) in the API's one error format."""
    if isinstance(data, dict) and set(data) == {"detail"}:
        return {"detail": str(data["detail"]), "errors": {}}
    errors = data if isinstance(data, dict) else {"non_field_errors": data}
    return {"detail": _summary(errors), "errors": errors}


def _domain_error_body(exc: DomainError) -> dict[str, Any]:
    if not isinstance(exc.detail, dict):
        return {"detail": str(exc.detail), "errors": {}}
    if set(exc.detail) <= {"detail", "errors"}:
        return {"detail": str(exc.detail.get("detail") or exc), "errors": exc.detail.get("errors", {})}
    return {"detail": str(exc), "errors": exc.detail}


def _summary(errors: dict[str, Any]) -> str:
    """The first field's first message, and how many other fields have errors."""
    field, messages = next(iter(errors.items()), ("", ["Invalid input."]))
    first = messages[0] if isinstance(messages, list) and messages else messages
    if isinstance(first, dict | list):  # a nested serializer's errors: the field's name says where to look
        first = "invalid"
    others = len(errors) - 1
    more = f" (and {others} more field{'s' if others != 1 else ''})" if others > 0 else ""
    where = f"{field}: " if field and field != "non_field_errors" else ""
    return f"{where}{first}{more}"


def _blocked_deletion_message(exc: ProtectedError) -> str:
    blockers = sorted(f"{type(row)._meta.verbose_name} {row}" for row in exc.protected_objects)
    named = ", ".join(blockers[:MAX_NAMED_BLOCKERS])
    more = f" and {len(blockers) - MAX_NAMED_BLOCKERS} more" if len(blockers) > MAX_NAMED_BLOCKERS else ""
    return f"Cannot delete this while these refer to it: {named}{more}. Delete or change them first."


# The collections a client starts from (URL names); every other endpoint hangs off these or is in the schema.
ROOT_LINKS = {
    "items": "item-list",
    "end_users": "end-user-list",
    "interactions": "interaction-list",
    "scenarios": "scenario-list",
    "algorithms": "algorithm-list",
    "schema": "schema",
    "docs": "swagger-ui",
}


@extend_schema(exclude=True)
@api_view(["GET"])
@permission_classes([AllowAny])
def api_root(request: Request) -> Response:
    """Where the API's collections, its OpenAPI schema and its interactive documentation are."""
    return Response({key: reverse(name, request=request) for key, name in ROOT_LINKS.items()})


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """An address that matches no route: JSON in the API's error format under ``/api/``, the HTML page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "No such address in the API.", "errors": {}}, status=404)
    return page_not_found(request, exception)
