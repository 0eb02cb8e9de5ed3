"""Token authentication for the API: knox's hashed tokens, refused once the account's password changes."""

from knox.auth import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from accounts.selectors import api_token_is_current


class ScopedTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <secret>``. ``request.auth`` is the :class:`~accounts.models.ApiToken`, whose scope
    :class:`recsys_site.permissions.RolePermissions` checks."""

    def validate_user(self, auth_token):
        if not api_token_is_current(token=auth_token):
            raise AuthenticationFailed("This token ended when its account's password changed.")
        return super().validate_user(auth_token)
