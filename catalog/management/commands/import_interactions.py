"""manage.py import_interactions FILE: load events from CSV, TSV or JSON lines."""

import argparse
from typing import Any

from catalog.importers import ImportFailed, ImportReport, InteractionColumns, TabularFile, interactions_file_import
from catalog.importers.cli import FileImportCommand
from catalog.importers.tabular import ROW_ORDER, EventTimes, event_times_parse


def _times_option(text: str) -> EventTimes:
    try:
        return event_times_parse(text)
    except ImportFailed as error:
        raise argparse.ArgumentTypeError(str(error)) from None


class Command(FileImportCommand):
    help = (
        "Import interactions (events) from a CSV/TSV or JSON-lines file, plain or compressed. Timestamps are unix"
        " seconds or ISO 8601 (UTC when no offset is given); a file without them takes --timestamp. Without"
        " --event-id-column every event gets the id 'sha1:' + SHA-1 of its user, item, kind, time and value, so"
        " importing the file again adds nothing (and identical events repeated in the file are stored once)."
    )

    def columns_arguments_add(self, parser):
        parser.add_argument("--user-column", default="user", help="Column of user ids (default: user).")
        parser.add_argument("--item-column", default="item", help="Column of item ids (default: item).")
        times = parser.add_mutually_exclusive_group()
        times.add_argument("--timestamp-column", help="Column of event times (default: timestamp).")
        times.add_argument(
            "--timestamp",
            type=_times_option,
            help=f"For a file without times: '{ROW_ORDER}' (line n happened n seconds after the unix epoch, so"
            " the order is kept) or one ISO 8601 time for every event (e.g. 2024-01-01T00:00:00Z).",
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

    def file_import(self, *, file: TabularFile, options: dict[str, Any], shared: dict[str, Any]) -> ImportReport:
        times = options["timestamp"]
        columns = InteractionColumns(
            user=options["user_column"],
            item=options["item_column"],
            timestamp=options["timestamp_column"] or (None if times else "timestamp"),
            value=options["value_column"],
            kind=options["kind_column"],
            event_id=options["event_id_column"],
        )
        return interactions_file_import(
            file=file,
            columns=columns,
            kind=options["kind"],
            times=times,
            create_missing=options["create_missing"],
            **shared,
        )
