"""Reads of the accounts app: a user's tokens, and whether a token still holds."""

import hashlib

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import ApiToken


def password_fingerprint(*, user) -> str:
    """Changes whenever the account's password does (each new hash has a new salt)."""
    return hashlib.sha256(user.password.encode()).hexdigest()


def api_token_is_current(*, token: ApiToken) -> bool:
    return token.password_fingerprint == password_fingerprint(user=token.user)


def api_tokens_of(*, user) -> QuerySet[ApiToken]:
    """The account's live tokens, newest first."""
    return ApiToken.objects.filter(user=user).filter(Q(expiry__isnull=True) | Q(expiry__gt=timezone.now()))
