from rest_framework.permissions import BasePermission


def require_permission(codename: str) -> type[BasePermission]:
    """A DRF permission class granting access to authenticated users holding ``codename`` (app_label.perm)."""

    class HasPermission(BasePermission):
        message = f"You need the {codename} permission."

        def has_permission(self, request, view) -> bool:
            user = request.user
            return bool(user and user.is_authenticated and user.has_perm(codename))

    HasPermission.__name__ = f"Has_{codename.replace('.', '_')}"
    return HasPermission
