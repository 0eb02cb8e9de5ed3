"""manage.py import_movielens PATH: load a MovieLens folder (ml-100k, ml-1m or ml-latest layout)."""

from pathlib import Path

from django.core.management.base import BaseCommand

from catalog.importers import movielens_import
from catalog.importers.cli import common_arguments_add, import_run, progress_from_options


class Command(BaseCommand):
    help = (
        "Import a MovieLens folder: movies become items (title, genres as categories), users become end users"
        " (with their demographics where the dataset has them), ratings become 'rating' events. The layout is"
        " detected from the files: u.data (ml-100k), ratings.dat (ml-1m, ml-10m) or ratings.csv (ml-latest-small,"
        " ml-latest, ml-20m, ml-25m). Event ids are '{layout}:{user}:{movie}:{timestamp}', so a re-run adds nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="Folder holding the dataset's files.")
        parser.add_argument(
            "--id-prefix",
            default="",
            help="Prepended to user and movie ids (e.g. 'ml100k:') to keep two datasets apart; default none.",
        )
        common_arguments_add(parser)

    def handle(self, *args, **options):
        import_run(
            self,
            lambda: movielens_import(
                folder=options["path"],
                id_prefix=options["id_prefix"],
                skip_invalid=options["skip_invalid"],
                progress=progress_from_options(options),
            ),
        )
