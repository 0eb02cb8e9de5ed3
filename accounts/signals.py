"""What changes who may do what through the API (tokens, accounts, roles, permissions) changes the access version,
so that every web process reads the tokens it keeps again (:class:`accounts.authentication.ScopedTokenAuthentication`).
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db.models.signals import m2m_changed, post_delete, post_save

from accounts.models import ApiToken
from recsys_site.serving_version import access_version_bump


def _changed(**kwargs) -> None:
    if kwargs.get("action", "post_").startswith("post_"):  # an m2m change is signalled before and after
        access_version_bump()


def access_signals_connect() -> None:
    user_model = get_user_model()
    for model in (ApiToken, user_model, Group, Permission):
        post_save.connect(_changed, sender=model, dispatch_uid=f"access-save-{model._meta.label}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"access-delete-{model._meta.label}")
    for through in (user_model.groups.through, user_model.user_permissions.through, Group.permissions.through):
        m2m_changed.connect(_changed, sender=through, dispatch_uid=f"access-m2m-{through._meta.label}")
