"""manage.py import_items FILE: create or update items from CSV, TSV or JSON lines."""

from django.core.management.base import BaseCommand

from catalog.importers import ItemColumns, items_file_import
from catalog.importers.cli import (
    common_arguments_add,
    file_arguments_add,
    file_from_options,
    import_run,
    progress_from_options,
)


class Command(BaseCommand):
    help = (
        "Import items from a CSV/TSV file with a header line or a JSON-lines file. Items are matched by id: new ones"
        " are created, stored ones get the file's title, description and categories (a column the file lacks"
        " counts as empty)."
    )

    def add_arguments(self, parser):
        file_arguments_add(parser)
        parser.add_argument("--id-column", default="id", help="Column of item ids (default: id).")
        parser.add_argument("--title-column", help="Column of titles (default: 'title' when the file has one).")
        parser.add_argument(
            "--description-column", help="Column of descriptions (default: 'description' when the file has one)."
        )
        parser.add_argument(
            "--categories-column",
            help="Column of categories (default: 'categories' when the file has one); text split by"
            " --categories-separator, or in JSON lines a list of strings.",
        )
        parser.add_argument(
            "--categories-separator", default="|", help="Separator between categories in one cell (default: |)."
        )
        common_arguments_add(parser)

    def handle(self, *args, **options):
        columns = ItemColumns(
            id=options["id_column"],
            title=options["title_column"],
            description=options["description_column"],
            categories=options["categories_column"],
        )
        file = file_from_options(options)
        import_run(
            self,
            lambda: items_file_import(
                file=file,
                columns=columns,
                categories_separator=options["categories_separator"],
                skip_invalid=options["skip_invalid"],
                progress=progress_from_options(options),
            ),
        )
