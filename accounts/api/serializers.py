from rest_framework import serializers

from accounts.models import ApiToken


class ApiTokenSerializer(serializers.ModelSerializer):
    """A token as its owner sees it: never its secret, nor its digest."""

    class Meta:
        model = ApiToken
        fields = ["token_key", "name", "scope", "created", "expiry"]
        read_only_fields = fields
