"""API tokens: one per client, stored as a digest, with a scope and an expiry."""

from django.conf import settings
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


class AuditAction(models.TextChoices):
    END_USER_DELETED = "end_user_deleted", "end user deleted"
    SCENARIO_DELETED = "scenario_deleted", "scenario deleted"


class AuditRecord(models.Model):
    """Who deleted what, and when. Kept when the account and the deleted rows are gone: ``actor_name`` is the
    account's username at the time, ``subject`` the deleted end user's external id or the scenario's slug, and
    ``details`` what went with it (counts, run ids, and for a scenario its configuration, runs and promotions)."""

    action = models.CharField(max_length=32, choices=AuditAction.choices)
    subject = models.CharField(max_length=255)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_name = models.CharField(max_length=150, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["action", "subject"], name="audit_action_subject")]

    def __str__(self) -> str:
        return f"{self.get_action_display()}: {self.subject} by {self.actor_name or 'system'}"
