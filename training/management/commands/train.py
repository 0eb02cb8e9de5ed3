"""Queue a retrain of a scenario from the command line, and optionally wait for it (``--algorithm auto`` chooses
the model within its budget and ends with the run it chose and why)."""

import json

from django.core.management.base import BaseCommand, CommandError

from recsys_site.errors import DomainError
from scenarios.models import Scenario
from training.management.follow import job_follow
from training.models import TrainingRun
from training.services import training_run_create


class Command(BaseCommand):
    help = "Queue a training run of SCENARIO on a Celery worker; with --wait, follow it and print its metrics."

    def add_arguments(self, parser):
        parser.add_argument("scenario", help="Scenario slug.")
        parser.add_argument("--algorithm", help="Algorithm name (default: the scenario's).")
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="Hyperparameter override; repeat for several.",
        )
        parser.add_argument("--seed", type=int)
        parser.add_argument(
            "--parent", type=int, metavar="RUN", help="Run to start from (fine-tuning) or learn from (distillation)."
        )
        parser.add_argument("--queue", choices=["auto", "cpu", "gpu"])
        parser.add_argument(
            "--wait", action="store_true", help="Show progress until the run ends; print metrics as JSON."
        )
        parser.add_argument("--timeout", type=float, default=0, help="With --wait: give up after this many seconds.")

    def handle(self, *args, scenario: str, wait: bool, timeout: float, **options):
        found = Scenario.objects.filter(slug=scenario).first()
        if found is None:
            raise CommandError(
                f"no scenario {scenario!r} (known: {', '.join(Scenario.objects.values_list('slug', flat=True))})"
            )
        run = self._queue(found, options)
        self.stderr.write(f"queued run {run.pk}: {run.algorithm} on {found.slug} (queue {run.queue})")
        if wait:
            run = job_follow(run, line=_progress_line, write=self.stderr.write, timeout=timeout, name=f"run {run.pk}")
            self.stdout.write(json.dumps(_summary(run), indent=2))

    def _queue(self, scenario: Scenario, options: dict) -> TrainingRun:
        parent = options["parent"]
        parent_run = TrainingRun.objects.filter(pk=parent).first() if parent is not None else None
        if parent is not None and parent_run is None:
            raise CommandError(f"--parent {parent}: no such run")
        try:
            return training_run_create(
                scenario=scenario,
                algorithm=options["algorithm"],
                params=_params(options["param"]) if options["param"] else None,
                seed=options["seed"],
                queue=options["queue"],
                parent=parent_run,
            )
        except DomainError as error:
            raise CommandError(f"{error}: {json.dumps(error.detail)}") from error


def _progress_line(run: TrainingRun) -> str:
    line = f"run {run.pk}: {run.status} {run.phase} {run.progress:.0%}"
    if run.epoch:
        line += f" (epoch {run.epoch}/{run.total_epochs})"
    return line


def _summary(run: TrainingRun) -> dict:
    """What a finished run produced and what it cost: metrics, seconds per phase, the epoch whose weights it kept."""
    duration = (run.finished_at - run.started_at).total_seconds() if run.started_at and run.finished_at else None
    choice = {"chosen_run": run.chosen_run_id, "reason": run.selection.get("reason")} if run.chosen_run_id else {}
    return {
        "run": run.pk,
        "status": run.status,
        "algorithm": run.algorithm,
        "seed": run.seed,
        "parent": run.parent_id,
        "device": run.device,
        "seconds": duration,
        "timings": run.timings,
        "kept_epoch": run.kept_epoch,
        "epochs": run.total_epochs,
        "metrics": run.metrics,
        **choice,
    }


def _params(pairs: list[str]) -> dict:
    params = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise CommandError(f"--param {pair!r}: expected KEY=VALUE")
        params[key] = value  # the registry coerces strings to each parameter's type
    return params
