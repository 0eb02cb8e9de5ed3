"""manage.py import_items FILE: create or update items from CSV, TSV or JSON lines."""

from typing import Any

from catalog.importers import ImportReport, ItemColumns, TabularFile, items_file_import
from catalog.importers.cli import FileImportCommand


class Command(FileImportCommand):
    help = (
        "Import items from a CSV/TSV or JSON-lines file, plain or compressed. Items are matched by id: new ones are"
        " created, stored ones get the file's title, description and categories (a column the file lacks counts"
        " as empty)."
    )

    def columns_arguments_add(self, parser):
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

    def file_import(self, *, file: TabularFile, options: dict[str, Any], shared: dict[str, Any]) -> ImportReport:
        columns = ItemColumns(
            id=options["id_column"],
            title=options["title_column"],
            description=options["description_column"],
            categories=options["categories_column"],
        )
        return items_file_import(
            file=file, columns=columns, categories_separator=options["categories_separator"], **shared
        )
