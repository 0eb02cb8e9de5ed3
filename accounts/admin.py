"""The Django admin for accounts and tokens, with the limits of the admin role.

An account of the admin role manages other accounts, but only a superuser may make superusers, hand out
single permissions, or edit a superuser's account: otherwise the admin role could raise itself above itself.
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from knox.models import AuthToken

from accounts.models import ApiToken, AuditRecord
from recsys_site.admin_bases import ListAndDeleteAdmin, ReadOnlyAdmin

User = get_user_model()

# knox registers its own token model, which this project swaps for ApiToken.
if admin.site.is_registered(AuthToken):
    admin.site.unregister(AuthToken)
admin.site.unregister(User)

_SUPERUSER_ONLY = ("is_superuser", "user_permissions")


@admin.register(User)
class RoleLimitedUserAdmin(UserAdmin):
    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return fields if request.user.is_superuser else (*fields, *_SUPERUSER_ONLY)

    def get_queryset(self, request):
        users = super().get_queryset(request)
        return users if request.user.is_superuser else users.filter(is_superuser=False)


@admin.register(ApiToken)
class ApiTokenAdmin(ListAndDeleteAdmin):
    """Tokens are listed and revoked (deleted) here; they are made with ``manage.py create_token``, which
    prints the secret once. The digest is not shown: it is of no use to a reader."""

    list_display = ("token_key", "user", "scope", "name", "created", "expiry")
    list_filter = ("scope",)
    search_fields = ("token_key", "name", "user__username")
    fields = ("token_key", "user", "scope", "name", "created", "expiry")
    readonly_fields = fields


@admin.register(AuditRecord)
class AuditRecordAdmin(ReadOnlyAdmin):
    """The audit log of deletions: read-only, and kept (no one deletes from it here)."""

    list_display = ("created_at", "action", "subject", "actor_name")
    list_filter = ("action",)
    search_fields = ("subject", "actor_name")
    fields = ("created_at", "action", "subject", "actor_name", "details")
    readonly_fields = fields
