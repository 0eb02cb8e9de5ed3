from axes.backends import AxesStandaloneBackend
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db.models import Q


class LoginLockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout for logins over HTTP (the login page, the admin).

    A login without a request (the test client's ``login``, a shell) has no client address to count
    against, and cannot be reached from outside, so it is passed on to the next backend unchecked.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


class RoleBackend(ModelBackend):
    """Django's model backend, reading an account's permissions (its own and its groups') in one query, not two:
    each API request authenticates a fresh account object, so the permissions are read on every request."""

    def get_all_permissions(self, user_obj, obj=None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            permissions = Permission.objects.all()
            if not user_obj.is_superuser:
                permissions = permissions.filter(Q(user=user_obj) | Q(group__user=user_obj))
            rows = permissions.values_list("content_type__app_label", "codename").order_by()
            user_obj._perm_cache = {f"{app_label}.{codename}" for app_label, codename in rows}
        return user_obj._perm_cache
