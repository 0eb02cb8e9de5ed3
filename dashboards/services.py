"""Writes of the dashboards app: role groups and accounts."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from dashboards.roles import ADMIN, ROLE_PERMISSIONS
from recsys_site.errors import ValidationFailed


def roles_sync() -> None:
    """Create the role groups and give each exactly its permissions (safe to run again)."""
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        permissions: list[Permission] = []
        for codename in codenames:
            app_label, name = codename.split(".")
            permissions.extend(Permission.objects.filter(content_type__app_label=app_label, codename=name))
        group.permissions.set(permissions)


@transaction.atomic
def account_create(*, username: str, password: str, role: str, email: str = ""):
    """A platform account with one role; admins may also use the Django admin."""
    if role not in ROLE_PERMISSIONS:
        raise ValidationFailed("bad role", detail={"role": [f"must be one of {', '.join(ROLE_PERMISSIONS)}"]})
    roles_sync()
    user = get_user_model().objects.create_user(username=username, password=password, email=email)
    user.is_staff = role == ADMIN
    user.save(update_fields=["is_staff"])
    user.groups.set([Group.objects.get(name=role)])
    return user
