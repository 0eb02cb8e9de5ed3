"""manage.py import_items FILE: create or update items from CSV, TSV or JSON lines."""

from typing import Any

from catalog.importers import ImportReport, ItemColumns, TabularFile, items_file_import
from catalog.importers.cli import FileImportCommand

# Each field of ItemColumns, with the help of its --FIELD-column option (whose default is the field's).
COLUMN_HELP = {
    "id": "Column of item ids (default: id).",
    "title": "Column of titles (default: 'title' when the file has one).",
    "description": "Column of descriptions (default: 'description' when the file has one).",
    "categories": "Column of categories (default: 'categories' when the file has one); text split by"
    " --categories-separator, or in JSON lines a list of strings.",
}


class Command(FileImportCommand):
    help = (
        "Import items from a CSV/TSV or JSON-lines file, plain or compressed. Items are matched by id: new ones are"
        " created, stored ones get the file's title, description and categories (a column the file lacks counts"
        " as empty)."
    )

    def columns_arguments_add(self, parser):
        for column, help_text in COLUMN_HELP.items():
            parser.add_argument(f"--{column}-column", default=getattr(ItemColumns, column), help=help_text)
        parser.add_argument(
            "--categories-separator", default="|", help="Separator between categories in one cell (default: |)."
        )

    def file_import(self, *, file: TabularFile, options: dict[str, Any], shared: dict[str, Any]) -> ImportReport:
        columns = ItemColumns(**{column: options[f"{column}_column"] for column in COLUMN_HELP})
        return items_file_import(
            file=file, columns=columns, categories_separator=options["categories_separator"], **shared
        )
