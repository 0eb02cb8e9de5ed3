"""Prepare a demo: migrate, an admin account, MovieLens 100K (or generated data), the demo scenarios."""

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
from scenarios.services import scenario_create, scenario_slice_refresh, scenario_update

DEFAULT_DATA = settings.BASE_DIR.parent / "shared" / "data" / "ml-100k"


def _shelf(slug: str, name: str, *, categories: list[str], described: str, algorithm: str) -> dict:
    """A member of the movies group that keeps only the films of ``categories`` (``described`` in words)."""
    return {
        "slug": slug,
        "name": name,
        "description": f"Only {described} (3 stars or more), split with its group.",
        "include_categories": categories,
        "event_weights": {"rating": 1.0},
        "min_value": 3,
        "min_user_events": 5,
        "split": "random",
        "algorithm": algorithm,
        "parent": "movies",
    }


# The group first: its members name it as their parent (and are split with it, so the matrix compares fairly).
DEMO_SCENARIOS = (
    {
        "slug": "movies",
        "name": "Movies: home feed",
        "description": "Every film; ratings of 3 stars or more count as positive feedback. The group of the two "
        "shelves below: the matrix page evaluates every model of the group on each shelf.",
        "event_weights": {"rating": 1.0},
        "min_value": 3,
        "split": "random",
        "algorithm": "ease",
    },
    _shelf(
        "comedy-romance",
        "Comedy and romance shelf",
        categories=["Comedy", "Romance"],
        described="comedies and romances",
        algorithm="item_knn",
    ),
    _shelf(
        "action-thriller",
        "Action and thriller shelf",
        categories=["Action", "Thriller"],
        described="action films and thrillers",
        algorithm="ease",
    ),
    {
        "slug": "ratings",
        "name": "Movies: predicted ratings",
        "description": "Every rating from 1 to 5 stars learnt as a value: its models predict the rating a user would "
        "give (RMSE and MAE on the run pages; the API answers at /api/v1/scenarios/ratings/predictions/).",
        "event_weights": {"rating": 1.0},
        "objective": "rating",
        "split": "random",
        "algorithm": "biased_mf",
    },
)

START_HERE = """
Start here (log in first):
  1. {url}/scenarios/             the scenarios and their group; runs train on the worker now (progress bars)
  2. {url}/scenarios/movies/      runs, the live model, the serving history and Rollback
  3. {url}/scenarios/movies/runs/ every run in one sortable table, a column per metric and hyperparameter
  4. {url}/scenarios/movies/browse/   a user's or an item's events, recommendations and similar items
  5. {url}/scenarios/movies/matrix/   every model of the group evaluated on each shelf
  6. {url}/scenarios/movies/          the auto run: which model it chose among its candidates, and why
  7. {url}/scenarios/action-thriller/ a hyperparameter study (under Hyperparameter studies), its best trial
  8. {url}/scenarios/ratings/         a rating scenario: RMSE and MAE on its run pages
"""


class Command(BaseCommand):
    help = "Migrate, create an admin, load MovieLens 100K (or generated data) and define the demo scenarios."

    def add_arguments(self, parser):
        parser.add_argument("--data", type=Path, default=Path(os.environ.get("RECSYS_DEMO_DATA", DEFAULT_DATA)))
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Where the web server will listen.")

    def handle(self, *args, data: Path, url: str, **options):
        call_command("migrate", interactive=False, verbosity=0)
        username, password = self._admin()
        if catalog_counts()["interactions"] == 0 or data.is_dir():
            self._load(data)
        for definition in DEMO_SCENARIOS:
            scenario = _scenario(definition)
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
        self.stdout.write(START_HERE.format(url=url))

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


def _scenario(definition: dict) -> Scenario:
    """The demo scenario of ``definition``: created when missing; an existing one keeps its settings but joins its
    group."""
    parent = Scenario.objects.get(slug=definition["parent"]) if "parent" in definition else None
    data = {**definition, "parent": parent}
    existing = Scenario.objects.filter(slug=definition["slug"]).first()
    if existing is None:
        return scenario_create(data=data)
    if parent is not None and existing.parent_id is None:
        return scenario_update(scenario=existing, data={"parent": parent})
    return existing
