"""Train the demo: a baseline and a sequential model per demo scenario on the worker, promoting the best."""

import time

from django.core.management.base import BaseCommand

from scenarios.models import Scenario
from training.demo import demo_best_promote, demo_matrix_queue, demo_runs_queue, demo_study_start
from training.models import FINISHED, Study, StudyStatus, TrainingRun


class Command(BaseCommand):
    help = (
        "Queue a baseline and a second model for every scenario (those without runs) and an auto run, start a "
        "small hyperparameter study, follow the runs, promote each scenario's best run as runs finish, then fill "
        "in the group matrices."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Where the pages are, for the hints.")
        parser.add_argument("--timeout", type=float, default=1800, help="Stop following after this many seconds.")

    def handle(self, *args, url: str, timeout: float, **options):
        scenarios = list(Scenario.objects.order_by("slug"))
        queued = demo_runs_queue(scenarios=scenarios)
        if not queued:
            self.stdout.write("demo: every scenario has runs already; nothing queued")
            return
        self.stdout.write(f"demo: {len(queued)} runs queued on the worker (watch them on {url}/scenarios/)")
        study = demo_study_start(scenarios=scenarios)
        if study is not None:
            self.stdout.write(f"demo: study {study.pk} on {study.scenario.slug} started: {url}/studies/{study.pk}/")
        pending = {run.pk for run in queued}
        deadline = time.monotonic() + timeout
        while (pending or self._studying(study)) and time.monotonic() < deadline:
            for run in TrainingRun.objects.filter(pk__in=pending, status__in=FINISHED).select_related("scenario"):
                pending.discard(run.pk)
                self._finished(run, url)
            time.sleep(1)
        finished = not pending and not self._studying(study)
        groups = demo_matrix_queue(scenarios=scenarios)
        for group in groups:
            self.stdout.write(f"demo: matrix of {group.slug} being computed: {url}/scenarios/{group.slug}/matrix/")
        self.stdout.write(self.style.SUCCESS("demo: every demo run has finished" if finished else "demo: stopped"))

    def _studying(self, study: Study | None) -> bool:
        return study is not None and Study.objects.filter(pk=study.pk, status=StudyStatus.RUNNING).exists()

    def _finished(self, run: TrainingRun, url: str) -> None:
        value = run.metrics.get("ndcg@10")
        shown = f", NDCG@10 {value:.4f}" if isinstance(value, float) else f": {run.error[:200]}"
        if isinstance(run.metrics.get("rmse"), float):
            shown += f", RMSE {run.metrics['rmse']:.4f}"
        self.stdout.write(f"demo: run {run.pk} {run.algorithm} on {run.scenario.slug} {run.status}{shown}")
        promotion = demo_best_promote(scenario=run.scenario)
        if promotion is not None:
            self.stdout.write(
                f"demo: run {promotion.run_id} ({run.scenario.slug}) is live: {url}/scenarios/{run.scenario.slug}/"
            )
