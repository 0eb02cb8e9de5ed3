"""List a scenario's training runs."""

from django.core.management.base import BaseCommand, CommandError

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
            f"{'run':>6}  {'algorithm':<12} {'status':<10} {'progress':>8}  {metric:>10}  {'device':<6} created"
        )
        for run in runs:
            live = " *live*" if run.pk == found.live_run_id else ""
            value = run.metrics.get(metric)
            shown = f"{value:.4f}" if isinstance(value, float) else "–"
            self.stdout.write(
                f"{run.pk:>6}  {run.algorithm:<12} {run.status:<10} {run.progress:>8.0%}  {shown:>10}  "
                f"{run.device or '–':<6} {run.created_at:%Y-%m-%d %H:%M}{live}"
            )
