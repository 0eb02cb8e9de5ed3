"""API tokens: one per client, stored as a digest, with a scope and an expiry."""

from django.db import models
from knox.models import AbstractAuthToken


class TokenScope(models.TextChoices):
    # A token can never do more than its account's role; the scope narrows it further.
    INGEST = "ingest", "ingest events, items and users"
    RECOMMEND = "recommend", "read recommendations"
    FULL = "full", "the whole API, as the account's role allows"


class ApiToken(AbstractAuthToken):
    """A client's token. ``digest`` (the key) is the SHA-512 of the secret, ``token_key`` its first characters,
    shown to tell tokens apart; the secret itself is printed once when the token is made and never stored."""

    name = models.CharField(max_length=100, blank=True)
    scope = models.CharField(max_length=16, choices=TokenScope.choices)
    # A digest of the account's password hash when the token was made: a password change ends the token.
    password_fingerprint = models.CharField(max_length=64)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["user", "created"])]

    def __str__(self) -> str:
        return f"{self.token_key}… ({self.scope}) of {self.user}"
