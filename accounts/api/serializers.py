from rest_framework import serializers

from accounts.models import ApiToken, AuditRecord


class ApiTokenSerializer(serializers.ModelSerializer):
    """A token as its owner sees it: never its secret, nor its digest."""

    class Meta:
        model = ApiToken
        fields = ["token_key", "name", "scope", "created", "expiry"]
        read_only_fields = fields


class AuditRecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditRecord
        fields = ["id", "action", "subject", "actor_name", "details", "created_at"]
        read_only_fields = fields
