"""Token authentication for the API: knox's hashed tokens, refused once the account's password changes."""

from django.utils import timezone
from knox.auth import TokenAuthentication
from knox.signals import token_expired
from rest_framework.exceptions import AuthenticationFailed

from accounts.selectors import api_token_is_current


class ScopedTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <secret>``. ``request.auth`` is the :class:`~accounts.models.ApiToken`, whose scope
    :class:`recsys_site.permissions.RolePermissions` checks. One query per request: the token with its account."""

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
