"""Writes of the accounts app: making and revoking API tokens."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from accounts.models import ApiToken, TokenScope
from accounts.scopes import SCOPE_NEEDS
from accounts.selectors import password_fingerprint
from recsys_site.errors import NotFound, ValidationFailed

MAX_TOKEN_DAYS = 3650


def api_token_create(*, user, scope: str, name: str = "", expires_days: int | None = None) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns it with its secret, which is not stored and cannot be shown again."""
    if scope not in TokenScope.values:
        raise ValidationFailed("bad scope", detail={"scope": [f"must be one of {', '.join(TokenScope.values)}"]})
    days = settings.RECSYS_TOKEN_DEFAULT_DAYS if expires_days is None else expires_days
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise ValidationFailed("bad expiry", detail={"expires_days": [f"must be 1 to {MAX_TOKEN_DAYS}"]})
    if len(name) > ApiToken._meta.get_field("name").max_length:
        raise ValidationFailed("bad name", detail={"name": ["at most 100 characters"]})
    needs = SCOPE_NEEDS[scope]
    if needs and not user.has_perm(needs):
        # The role would refuse every call the token is for: say so now rather than at the first request.
        raise ValidationFailed("role too weak", detail={"scope": [f"{user}'s role lacks {needs}, which {scope} needs"]})
    ApiToken.objects.filter(user=user, expiry__lt=timezone.now()).delete()  # authentication leaves them
    return ApiToken.objects.create(
        user=user,
        expiry=timedelta(days=days),
        scope=scope,
        name=name,
        password_fingerprint=password_fingerprint(user=user),
    )


def api_token_revoke(*, user, token_key: str) -> None:
    """Delete one of ``user``'s own tokens, named by its ``token_key``."""
    deleted, _ = ApiToken.objects.filter(user=user, token_key=token_key).delete()
    if not deleted:
        raise NotFound("no such token", detail={"detail": f"You have no token {token_key!r}."})
