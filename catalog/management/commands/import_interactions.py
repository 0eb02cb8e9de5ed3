"""manage.py import_interactions FILE: load events from CSV, TSV or JSON lines."""

import argparse

from django.core.management.base import BaseCommand

from catalog.importers import InteractionColumns, interactions_file_import
from catalog.importers.cli import (
    common_arguments_add,
    file_arguments_add,
    file_from_options,
    import_run,
    progress_from_options,
)


class Command(BaseCommand):
    help = (
        "Import interactions (events) from a CSV/TSV file with a header line or a JSON-lines file. Timestamps are"
        " unix seconds or ISO 8601 (UTC when no offset is given). Without --event-id-column every event gets the"
        " id 'sha1:' + SHA-1 of its user, item, kind, time and value, so importing the file again adds nothing"
        " (and identical events repeated in the file are stored once)."
    )

    def add_arguments(self, parser):
        file_arguments_add(parser)
        parser.add_argument("--user-column", default="user", help="Column of user ids (default: user).")
        parser.add_argument("--item-column", default="item", help="Column of item ids (default: item).")
        parser.add_argument(
            "--timestamp-column", default="timestamp", help="Column of event times (default: timestamp)."
        )
        parser.add_argument(
            "--value-column", help="Column of values (default: 'value' when the file has one; else every value is 1)."
        )
        kinds = parser.add_mutually_exclusive_group()
        kinds.add_argument("--kind-column", help="Column of event kinds; by default every event gets --kind.")
        kinds.add_argument("--kind", default="view", help="Kind of every event when there is no kind column.")
        parser.add_argument("--event-id-column", help="Column of event ids; by default they are derived (see above).")
        parser.add_argument(
            "--create-missing",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="Create users and items the file names but the catalog lacks (default). With --no-create-missing"
            " such lines are invalid.",
        )
        common_arguments_add(parser)

    def handle(self, *args, **options):
        columns = InteractionColumns(
            user=options["user_column"],
            item=options["item_column"],
            timestamp=options["timestamp_column"],
            value=options["value_column"],
            kind=options["kind_column"],
            event_id=options["event_id_column"],
        )
        file = file_from_options(options)
        import_run(
            self,
            lambda: interactions_file_import(
                file=file,
                columns=columns,
                kind=options["kind"],
                create_missing=options["create_missing"],
                skip_invalid=options["skip_invalid"],
                progress=progress_from_options(options),
            ),
        )
