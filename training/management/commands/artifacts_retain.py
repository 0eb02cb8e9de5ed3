"""Delete the artifacts the retention policy does not keep (records stay)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.template.defaultfilters import filesizeformat

from training.retention import artifacts_retain


class Command(BaseCommand):
    help = (
        "Keep the artifacts of live and once-live runs, parents of unfinished runs and the last N succeeded runs "
        "per scenario; delete the others' files (their records stay)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--keep", type=int, default=settings.RECSYS_KEEP_RUNS, help="succeeded runs kept per scenario"
        )
        parser.add_argument("--dry-run", action="store_true", help="say what would be deleted, delete nothing")

    def handle(self, *args, keep: int, dry_run: bool, **options) -> None:
        if keep < 0:
            self.stderr.write("--keep must be 0 or more")
            raise SystemExit(2)
        report = artifacts_retain(keep_last=keep, dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        runs = ", ".join(map(str, report.deleted)) or "none"
        self.stdout.write(
            f"kept {len(report.kept)} artifacts; {verb} {len(report.deleted)} ({filesizeformat(report.freed_bytes)}): "
            f"runs {runs}"
        )
