"""API plumbing shared by the apps: the exception handler that maps domain errors to HTTP, and the API root."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import exception_handler as drf_exception_handler

from recsys_site.errors import DomainError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        body = exc.detail if isinstance(exc.detail, dict) else {"detail": exc.detail}
        return Response(body, status=exc.status_code)
    return drf_exception_handler(exc, context)


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
