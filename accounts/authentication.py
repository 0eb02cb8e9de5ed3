"""Token authentication for the API: knox's hashed tokens, refused once the account's password changes."""

import binascii
from functools import cache
from hmac import compare_digest

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.utils import timezone
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.settings import CONSTANTS, knox_settings
from knox.signals import token_expired
from rest_framework.exceptions import AuthenticationFailed

from accounts.models import ApiToken
from accounts.selectors import api_token_is_current
from recsys_site.serving_version import Kept, access_version_get


class ScopedTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <secret>``. ``request.auth`` is the :class:`~accounts.models.ApiToken`, whose scope
    :class:`recsys_site.permissions.RolePermissions` checks.

    One query: the token with its account and the account's permissions (its own and its role's), which
    :class:`accounts.backends.RoleBackend` then reads from the account instead of querying again. The query is
    written out: the API's every request needs it, and building it through the ORM cost more than running it. Its
    rows are kept by the process while the access version holds (:mod:`recsys_site.serving_version`: any token,
    account, role or permission saved or deleted changes it) and :data:`TOKEN_KEPT_SECONDS` at most, so a client's
    requests after its first pay no query; where the version is unknown (Redis unreachable), every request reads
    them. Each request still checks the secret against the digest, the expiry and the password fingerprint."""

    def authenticate_credentials(self, token: bytes):
        secret = token.decode("utf-8")
        key = secret[: CONSTANTS.TOKEN_KEY_LENGTH]
        for row in _token_rows.get(key, lambda: _token_rows_read(key)):
            auth_token = _token_from_row(row)
            if self._cleanup_token(auth_token):
                continue
            try:
                digest = hash_token(secret)
            except (TypeError, binascii.Error) as error:
                raise AuthenticationFailed("Invalid token.") from error
            if compare_digest(digest, auth_token.digest):
                if knox_settings.AUTO_REFRESH and auth_token.expiry:
                    self.renew_token(auth_token)
                return self.validate_user(auth_token)
        raise AuthenticationFailed("Invalid token.")

    def validate_user(self, auth_token):
        if not api_token_is_current(token=auth_token):
            raise AuthenticationFailed("This token ended when its account's password changed.")
        return super().validate_user(auth_token)

    def _cleanup_token(self, auth_token) -> bool:
        """An expired token is refused and deleted. Knox would also read the account's other tokens here, on every
        request, to delete the expired ones; :func:`accounts.services.api_token_create` deletes those instead."""
        if auth_token.expiry is None or auth_token.expiry >= timezone.now():
            return False
        username = auth_token.user.get_username()
        auth_token.delete()
        token_expired.send(sender=self.__class__, username=username, source="auth_token")
        return True


TOKEN_KEPT_SECONDS = 60.0  # the bound on a change made around the services (SQL, a bulk update)
_token_rows: Kept[list[tuple]] = Kept(
    version=access_version_get, ttl=TOKEN_KEPT_SECONDS, size=10_000, unversioned=False
)


def _token_rows_read(key: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(_token_query(), [key])
        return cursor.fetchall()


def kept_tokens_clear() -> None:
    """Forget the token rows this process keeps."""
    _token_rows.clear()


def _concrete(model) -> list[str]:
    return [field.attname for field in model._meta.concrete_fields]


@cache
def _token_query() -> str:
    user_model = get_user_model()
    token_columns = ", ".join(f"t.{name}" for name in _concrete(ApiToken))
    user_columns = ", ".join(f"u.{name}" for name in _concrete(user_model))
    own, groups, granted, permission, content_type, token_table, user_table = (
        connection.ops.quote_name(model._meta.db_table)
        for model in (
            user_model.user_permissions.through,
            user_model.groups.through,
            Group.permissions.through,
            Permission,
            ContentType,
            ApiToken,
            user_model,
        )
    )
    permissions = (
        f"SELECT ct.app_label || '.' || p.codename FROM {permission} p"
        f" JOIN {content_type} ct ON ct.id = p.content_type_id"
        f" WHERE p.id IN (SELECT permission_id FROM {own} WHERE user_id = u.id"
        f" UNION SELECT g.permission_id FROM {granted} g JOIN {groups} ug ON ug.group_id = g.group_id"
        " WHERE ug.user_id = u.id)"
    )
    return (
        f"SELECT {token_columns}, {user_columns}, ARRAY({permissions})"
        f" FROM {token_table} t JOIN {user_table} u ON u.id = t.user_id"
        " WHERE t.token_key = %s"
    )


def _token_from_row(row: tuple) -> ApiToken:
    token_fields, user_model = _concrete(ApiToken), get_user_model()
    user_fields = _concrete(user_model)
    auth_token = ApiToken.from_db(connection.alias, token_fields, row[: len(token_fields)])
    user = user_model.from_db(connection.alias, user_fields, row[len(token_fields) : -1])
    if not user.is_superuser:  # a superuser has every permission; Django never asks the backend for them
        user._perm_cache = set(row[-1])
    auth_token.user = user
    return auth_token
