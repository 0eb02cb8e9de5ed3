"""The three roles of platform accounts, as Django groups with model permissions.

- viewer: reads everything;
- analyst: also configures scenarios, retrains, cancels and promotes;
- admin: also manages accounts and API tokens (and may use the Django admin).

The server checks permissions on every page and API action; templates hide what a role cannot do.
"""

VIEWER, ANALYST, ADMIN = "viewer", "analyst", "admin"

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
]
_ANALYST = [
    "scenarios.add_scenario",
    "scenarios.change_scenario",
    "training.add_trainingrun",
    "training.change_trainingrun",
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
    "authtoken.view_token",
    "authtoken.add_token",
    "authtoken.change_token",
    "authtoken.delete_token",
    "authtoken.view_tokenproxy",
    "authtoken.add_tokenproxy",
    "authtoken.delete_tokenproxy",
    "catalog.add_item",
    "catalog.change_item",
    "catalog.delete_item",
    "catalog.add_enduser",
    "catalog.change_enduser",
    "catalog.delete_enduser",
    "catalog.add_interaction",
    "scenarios.delete_scenario",
]

ROLE_PERMISSIONS = {VIEWER: _VIEW, ANALYST: _VIEW + _ANALYST, ADMIN: _VIEW + _ANALYST + _ADMIN}


def user_role(user) -> str | None:
    """The strongest role a user holds (superusers count as admin)."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return ADMIN
    names = set(user.groups.values_list("name", flat=True))
    return next((role for role in (ADMIN, ANALYST, VIEWER) if role in names), None)
