"""The OpenAPI schema's error responses, documented on every operation.

The schema view is in :mod:`recsys_site.schema_view`: drf-spectacular's views
import the schema class named in the settings, so this module must not import them.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny


class ErrorSerializer(serializers.Serializer):
    """The body of every error response (see ``recsys_site.api.exception_handler``)."""

    detail = serializers.CharField(help_text="One sentence saying what went wrong.")
    errors = serializers.DictField(  # type: ignore[assignment]  # a field named like Serializer.errors
        child=serializers.JSONField(),
        help_text="Per field (or per batch index, then per field) the list of messages; empty when no field is at"
        " fault.",
    )


def _error(description: str, detail: str, errors: dict | None = None) -> OpenApiResponse:
    example = OpenApiExample(description, value={"detail": detail, "errors": errors or {}}, response_only=True)
    return OpenApiResponse(response=ErrorSerializer, description=description, examples=[example])


ERROR_RESPONSES = {
    "400": _error(
        "Invalid input; nothing was stored",
        "seed: Ensure this value is less than or equal to 2147483647.",
        {"seed": ["Ensure this value is less than or equal to 2147483647."]},
    ),
    "401": _error("No or invalid credentials", "Authentication credentials were not provided."),
    "403": _error("The credentials lack the permission", "You do not have permission to perform this action."),
    "404": _error("No such object", "No Item matches the given query."),
    "409": _error(
        "Conflicts with the stored state",
        "Cannot delete this while these refer to it: scenario Comedies. Delete or change them first.",
    ),
    "413": _error("The request body is too large", "The request body is larger than 16777216 bytes."),
    "429": _error("Too many requests; retry later", "Request was throttled. Expected available in 12 seconds."),
    "503": _error("A model or service is unavailable; retry later", "The live model's artifact failed its checksum."),
}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class ErrorDocumentingAutoSchema(AutoSchema):
    """drf-spectacular's schema, with the error responses an operation can give added where not declared."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code not in responses:
                responses[code] = self._get_response_for_code(ERROR_RESPONSES[code], code, direction=direction)
        return responses

    def _error_codes(self) -> list[str]:
        codes = ["400", "429", "503"]
        if not all(isinstance(permission, AllowAny) for permission in self.view.get_permissions()):
            codes += ["401", "403"]
        if "{" in self.path:
            codes.append("404")
        if self.method in WRITE_METHODS:
            codes += ["409", "413"]
        return sorted(codes)
