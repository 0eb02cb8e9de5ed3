"""Prepare a demo: migrate, an admin account, MovieLens 100K (or generated data), two scenarios."""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from catalog.demo import demo_dataset_generate
from catalog.selectors import catalog_counts
from scenarios.models import Scenario
from scenarios.services import scenario_create, scenario_slice_refresh

DEFAULT_DATA = settings.BASE_DIR.parent / "shared" / "data" / "ml-100k"

DEMO_SCENARIOS = (
    {
        "slug": "movies",
        "name": "Movies: home feed",
        "description": "Every film; ratings of 3 stars or more count as positive feedback.",
        "event_weights": {"rating": 1.0},
        "min_value": 3,
        "split": "random",
        "algorithm": "ease",
    },
    {
        "slug": "comedy-romance",
        "name": "Comedy and romance shelf",
        "description": "Only comedies and romances, split in time: train on the past, test on the latest events.",
        "include_categories": ["Comedy", "Romance"],
        "event_weights": {"rating": 1.0},
        "min_user_events": 5,
        "split": "temporal",
        "algorithm": "item_knn",
    },
)


class Command(BaseCommand):
    help = "Migrate, create an admin, load MovieLens 100K (or generated data) and define two demo scenarios."

    def add_arguments(self, parser):
        parser.add_argument("--data", type=Path, default=Path(os.environ.get("RECSYS_DEMO_DATA", DEFAULT_DATA)))
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Where the web server will listen.")

    def handle(self, *args, data: Path, url: str, **options):
        call_command("migrate", interactive=False, verbosity=0)
        username, password = self._admin()
        if catalog_counts()["interactions"] == 0 or data.is_dir():
            self._load(data)
        for definition in DEMO_SCENARIOS:
            scenario = Scenario.objects.filter(slug=definition["slug"]).first() or scenario_create(data=definition)
            stats = scenario_slice_refresh(scenario=scenario)
            self.stdout.write(
                f"scenario {scenario.slug}: {stats['users']} users, {stats['items']} items, {stats['events']} events"
            )
        counts = catalog_counts()
        self.stdout.write(
            self.style.SUCCESS(
                f"\ncatalog: {counts['items']} items, {counts['end_users']} end users, "
                f"{counts['interactions']} interactions\n"
                f"admin login: {username} / {password}\n"
                f"  dashboard   {url}/\n  admin       {url}/admin/\n  API         {url}/api/v1/\n"
                f"  Swagger UI  {url}/api/v1/docs/\n"
            )
        )

    def _admin(self) -> tuple[str, str]:
        secret_file = settings.BASE_DIR / "var" / "demo-admin-password"
        secret_file.parent.mkdir(parents=True, exist_ok=True)
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(12))
            secret_file.chmod(0o600)
        password = secret_file.read_text().strip()
        user, _ = get_user_model().objects.get_or_create(username="admin", defaults={"email": "admin@localhost"})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        return "admin", password

    def _load(self, data: Path) -> None:
        if data.is_dir():
            self.stdout.write(f"==> importing MovieLens from {data}")
            call_command("import_movielens", str(data), no_progress=not self.stdout.isatty())
        else:
            self.stdout.write(f"==> {data} not found: generating a small synthetic dataset")
            result = demo_dataset_generate()
            self.stdout.write(f"generated {result.created} events")
