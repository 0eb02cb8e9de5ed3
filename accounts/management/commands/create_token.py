"""Make an API token for an account and print its secret (once: only a digest is stored)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.models import TokenScope
from accounts.services import api_token_create
from recsys_site.errors import DomainError


class Command(BaseCommand):
    help = "Create an API token for USER with a scope (ingest, recommend or full) and an expiry."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--scope", choices=TokenScope.values, required=True)
        parser.add_argument("--expires-days", type=int, help="Default: RECSYS_TOKEN_DEFAULT_DAYS (90).")
        parser.add_argument("--name", default="", help="What the token is for, shown when tokens are listed.")

    def handle(self, *args, username, scope, expires_days, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no account {username!r}")
        try:
            token, secret = api_token_create(user=user, scope=scope, name=name, expires_days=expires_days)
        except DomainError as error:
            raise CommandError(f"{error}: {error.detail}") from error
        self.stderr.write(f"{scope} token {token.token_key} for {username}, expires {token.expiry:%Y-%m-%d %H:%M} UTC")
        self.stdout.write(secret)
