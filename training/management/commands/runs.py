"""List a scenario's training runs."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from scenarios.models import Scenario
from training.models import TrainingRun


class Command(BaseCommand):
    help = "List the training runs of SCENARIO, newest first."

    def add_arguments(self, parser):
        parser.add_argument("scenario")
        parser.add_argument("--limit", type=int, default=20)
        parser.add_argument("--metric", default="ndcg@10", help="Metric column to show (default ndcg@10).")

    def handle(self, *args, scenario: str, limit: int, metric: str, **options):
        found = Scenario.objects.filter(slug=scenario).first()
        if found is None:
            raise CommandError(f"no scenario {scenario!r}")
        runs = TrainingRun.objects.filter(scenario=found).order_by("-created_at")[:limit]
        self.stdout.write(
            f"{'run':>6}  {'algorithm':<12} {'status':<10} {'progress':>8}  {metric:>10}  {'duration':>9}  "
            f"{'seed':>10}  {'parent':>6}  {'device':<6} created"
        )
        for run in runs:
            live = " *live*" if run.pk == found.live_run_id else ""
            value = run.metrics.get(metric)
            shown = f"{value:.4f}" if isinstance(value, float) else "–"
            self.stdout.write(
                f"{run.pk:>6}  {run.algorithm:<12} {run.status:<10} {run.progress:>8.0%}  {shown:>10}  "
                f"{_duration(run):>9}  {run.seed:>10}  {run.parent_id or '–':>6}  "
                f"{run.device or '–':<6} {run.created_at:%Y-%m-%d %H:%M}{live}"
            )


def _duration(run: TrainingRun) -> str:
    """Wall time from start to finish (or until now for a running run), as 1m05s; – before it starts."""
    if run.started_at is None:
        return "–"
    seconds = int(((run.finished_at or timezone.now()) - run.started_at).total_seconds())
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
