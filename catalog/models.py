"""Items, the end users recommendations are made for, and their interactions."""

from django.core.validators import RegexValidator
from django.db import models


class Item(models.Model):
    """Something that can be recommended: a film, a book, a track, a product."""

    external_id = models.CharField(max_length=255, unique=True)
    title = models.CharField(max_length=500, blank=True, default="")
    description = models.TextField(blank=True, default="")
    categories = models.JSONField(default=list, blank=True, help_text="List of category names.")
    attributes = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(external_id=""), name="item_external_id_not_empty"),
        ]

    def __str__(self) -> str:
        return self.title or self.external_id


class EndUser(models.Model):
    """A person recommendations are made for; not a login account of the platform."""

    external_id = models.CharField(max_length=255, unique=True)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "end user"
        constraints = [
            models.CheckConstraint(condition=~models.Q(external_id=""), name="enduser_external_id_not_empty"),
        ]

    def __str__(self) -> str:
        return self.external_id


# Kinds are open-ended (a scenario weights the ones it cares about); these are the usual ones.
COMMON_KINDS = ("view", "click", "cart", "purchase", "rating", "like", "play", "share")
kind_validator = RegexValidator(
    r"^[a-z][a-z0-9_]{0,31}$", "Use lower-case letters, digits and underscores, starting with a letter."
)


class Interaction(models.Model):
    """One event of an end user with an item; ``event_id`` makes client retries idempotent."""

    # No single-column indexes: the composite indexes below lead with user and item and serve those lookups.
    user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="interactions", db_index=False)
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="interactions", db_index=False)
    kind = models.CharField(max_length=32, validators=[kind_validator], default="view")
    value = models.FloatField(default=1.0, help_text="Rating, watch share, quantity… 1.0 for plain events.")
    occurred_at = models.DateTimeField()
    context = models.JSONField(default=dict, blank=True)
    event_id = models.CharField(max_length=255, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # Serving: one user's recent history.
            models.Index(fields=["user", "-occurred_at"], name="interaction_user_time"),
            # Training snapshots: a scenario's events by kind, in time order.
            models.Index(fields=["kind", "occurred_at"], name="interaction_kind_time"),
            # Item popularity and item-side filters.
            models.Index(fields=["item", "occurred_at"], name="interaction_item_time"),
        ]
        constraints = [
            # A constraint (not unique=True) so PostgreSQL gets no extra LIKE index for event ids.
            models.UniqueConstraint(fields=["event_id"], name="interaction_event_id_unique"),
            models.CheckConstraint(condition=~models.Q(event_id=""), name="interaction_event_id_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind} {self.item_id} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class ItemEmbedding(models.Model):
    """An item's text embedding by one encoder, and the hash of the text it was computed from.

    ``vector`` holds ``dimension`` float32 values, little-endian (``numpy.frombuffer(vector, "<f4")``).
    Written only by ``catalog.embeddings``; an item whose text hash changes is embedded again.
    """

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="embeddings")
    encoder = models.CharField(max_length=64)
    text_sha256 = models.CharField(max_length=64)
    dimension = models.PositiveIntegerField()
    vector = models.BinaryField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["item_id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "encoder"], name="item_embedding_item_encoder_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.encoder} embedding of item {self.item_id}"
