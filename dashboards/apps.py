from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DashboardsConfig(AppConfig):
    name = "dashboards"
    verbose_name = "Dashboards"

    def ready(self) -> None:
        # Permissions exist only after every app migrated, so the role groups are synced then.
        post_migrate.connect(_sync_roles, sender=self)


def _sync_roles(**kwargs) -> None:
    from dashboards.services import roles_sync

    roles_sync()
