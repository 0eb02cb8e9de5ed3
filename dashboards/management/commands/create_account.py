"""Create a platform account with a role (viewer, analyst or admin)."""

import secrets

from django.core.management.base import BaseCommand, CommandError

from dashboards.roles import ROLE_PERMISSIONS
from dashboards.services import account_create
from recsys_site.errors import DomainError


class Command(BaseCommand):
    help = "Create a login for the dashboards and the API with one role."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", choices=list(ROLE_PERMISSIONS), required=True)
        parser.add_argument("--password", help="Default: a generated one, printed.")
        parser.add_argument("--email", default="")

    def handle(self, *args, username, role, password, email, **options):
        password = password or secrets.token_urlsafe(12)
        try:
            account_create(username=username, password=password, role=role, email=email)
        except DomainError as error:
            raise CommandError(str(error)) from error
        except Exception as error:  # e.g. the username is taken
            raise CommandError(f"cannot create {username!r}: {error}") from error
        self.stdout.write(f"created {role} {username} with password {password}")
