"""Who may call what in the API: the account's role (Django model permissions, reads included), narrowed by
the scope of the token the request came with."""

from django.conf import settings
from rest_framework.permissions import DjangoModelPermissions

from accounts.models import ApiToken, TokenScope
from accounts.scopes import scope_allows

_VIEW = ["%(app_label)s.view_%(model_name)s"]


def _token_scope(request) -> str:
    # A logged-in browser session acts with the full role, like a full token.
    return request.auth.scope if isinstance(request.auth, ApiToken) else TokenScope.FULL


def _scope_allows(request) -> bool:
    match = request.resolver_match
    return scope_allows(scope=_token_scope(request), url_name=match.url_name if match else None, method=request.method)


class RolePermissions(DjangoModelPermissions):
    """DjangoModelPermissions with reads too: GET, HEAD and OPTIONS need ``view_<model>``.

    A view without a queryset must name its permissions with :func:`require_permission`; otherwise it is
    refused to everyone, so a forgotten declaration cannot open an endpoint.
    """

    perms_map = {**DjangoModelPermissions.perms_map, "GET": _VIEW, "HEAD": _VIEW, "OPTIONS": _VIEW}

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if not _scope_allows(request):
            self.message = f"A {_token_scope(request)} token cannot call this operation."
            return False
        return self.role_allows(request, view)

    def role_allows(self, request, view) -> bool:
        if not hasattr(view, "get_queryset"):
            return False
        return super().has_permission(request, view)


def require_permission(*codenames: str) -> type[RolePermissions]:
    """A permission class for a view whose every method needs ``codenames`` (``app_label.codename``); with none,
    any logged-in account may call it. Token scopes apply as everywhere."""

    class HasPermission(RolePermissions):
        message = f"You need the {', '.join(codenames)} permission." if codenames else "You need to log in."

        def role_allows(self, request, view) -> bool:
            return request.user.has_perms(codenames)

    HasPermission.__name__ = "Has_" + "_".join(codename.replace(".", "_") for codename in codenames)
    return HasPermission


class ApiDocsAccess(RolePermissions):
    """The schema and its documentation pages: any logged-in account (no role needed), or anyone when
    ``RECSYS_API_DOCS_PUBLIC`` is on."""

    def has_permission(self, request, view) -> bool:
        return settings.RECSYS_API_DOCS_PUBLIC or super().has_permission(request, view)

    def role_allows(self, request, view) -> bool:
        return True
