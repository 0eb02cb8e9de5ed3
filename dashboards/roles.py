"""The roles of platform accounts, as Django groups with model permissions.

- viewer: reads everything (an account with no role reads nothing);
- analyst: also configures scenarios, retrains, cancels and promotes, and ingests events, items and users;
- integration: a client system's account: ingests events, items and users and reads recommendations, nothing else;
- admin: everything the analyst does, plus deleting catalogue rows and scenarios, managing accounts and
  revoking anyone's API tokens, reading the audit log of deletions (and may use the Django admin, but not
  make superusers).

The server checks permissions on every page and API action (reads included); templates hide what a role
cannot do. An API token acts with its account's role, narrowed by the token's scope.
"""

VIEWER, ANALYST, INTEGRATION, ADMIN = "viewer", "analyst", "integration", "admin"

_VIEW = [
    "catalog.view_item",
    "catalog.view_enduser",
    "catalog.view_interaction",
    "scenarios.view_scenario",
    "training.view_trainingrun",
    "training.view_runevaluation",
    "training.view_promotion",
    "django_celery_beat.view_periodictask",
    "django_celery_beat.view_crontabschedule",
    "training.view_embeddingjob",
    "training.view_study",
]
_INGEST = [
    "catalog.add_item",
    "catalog.change_item",
    "catalog.add_enduser",
    "catalog.change_enduser",
    "catalog.add_interaction",
]
_ANALYST = [
    "scenarios.add_scenario",
    "scenarios.change_scenario",
    "training.add_trainingrun",
    "training.change_trainingrun",
    "training.add_study",
    "training.change_study",
    "django_celery_beat.add_periodictask",
    "django_celery_beat.change_periodictask",
    "django_celery_beat.delete_periodictask",
    "django_celery_beat.add_crontabschedule",
]
_ADMIN = [
    "auth.view_user",
    "auth.add_user",
    "auth.change_user",
    "auth.delete_user",
    "auth.view_group",
    "accounts.view_apitoken",
    "accounts.delete_apitoken",
    "accounts.view_auditrecord",
    "catalog.delete_item",
    "catalog.delete_enduser",
    "scenarios.delete_scenario",
]
# Recommendations are read with the scenario's view permission.
_INTEGRATION = [*_INGEST, "scenarios.view_scenario"]

ROLE_PERMISSIONS = {
    VIEWER: _VIEW,
    ANALYST: _VIEW + _INGEST + _ANALYST,
    INTEGRATION: _INTEGRATION,
    ADMIN: _VIEW + _INGEST + _ANALYST + _ADMIN,
}


def user_role(user) -> str | None:
    """The strongest role a user holds (superusers count as admin)."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return ADMIN
    names = set(user.groups.values_list("name", flat=True))
    return next((role for role in (ADMIN, ANALYST, INTEGRATION, VIEWER) if role in names), None)
