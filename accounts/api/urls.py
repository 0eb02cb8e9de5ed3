from django.urls import path

from accounts.api import views

urlpatterns = [
    path("tokens/", views.OwnTokenListApi.as_view(), name="token-list"),
    path("tokens/<str:token_key>/", views.OwnTokenRevokeApi.as_view(), name="token-revoke"),
    path("audit-records/", views.AuditRecordListApi.as_view(), name="audit-record-list"),
]
