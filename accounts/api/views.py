from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.serializers import ApiTokenSerializer, AuditRecordSerializer
from accounts.models import ApiToken, AuditRecord
from accounts.selectors import api_tokens_of
from accounts.services import api_token_revoke
from recsys_site.permissions import RolePermissions, require_permission


class OwnTokenListApi(generics.ListAPIView):
    """The caller's own live API tokens (no secrets: they are shown once, when made)."""

    permission_classes = [require_permission()]
    serializer_class = ApiTokenSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no account
            return ApiToken.objects.none()
        return api_tokens_of(user=self.request.user)


class OwnTokenRevokeApi(APIView):
    permission_classes = [require_permission()]

    @extend_schema(request=None, responses={204: None}, summary="Revoke one of your own API tokens")
    def delete(self, request: Request, token_key: str) -> Response:
        api_token_revoke(user=request.user, token_key=token_key)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AuditRecordListApi(generics.ListAPIView):
    """The audit log of deletions (end users, scenarios), newest first: who, when, what. Filters ``action`` and
    ``subject`` (an end user's external id or a scenario's slug)."""

    permission_classes = [RolePermissions]  # accounts.view_auditrecord: the admin role
    queryset = AuditRecord.objects.all()
    serializer_class = AuditRecordSerializer
    filterset_fields = ["action", "subject"]
    ordering_fields = ["created_at"]
