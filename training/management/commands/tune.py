"""Start a hyperparameter study of a scenario from the command line, and optionally wait for it."""

import json
import time

from django.core.management.base import BaseCommand, CommandError

from recsys_site.errors import DomainError
from scenarios.models import Scenario
from training.models import Study
from training.tuning.studies import study_create


class Command(BaseCommand):
    help = (
        "Start a study on SCENARIO: trials of the named algorithms (default: the scenario's) run as child runs on "
        "the Celery workers, searched over each algorithm's declared ranges unless --space says otherwise."
    )

    def add_arguments(self, parser):
        parser.add_argument("scenario", help="Scenario slug.")
        parser.add_argument("--algorithm", action="append", default=[], help="Algorithm to search; repeat for several.")
        parser.add_argument("--trials", type=int, help="Most trials (the trial budget).")
        parser.add_argument("--seconds", type=int, help="Wall-time budget: no trial starts or goes on after it.")
        parser.add_argument(
            "--objective",
            help="Validation metric@K to maximise, or rmse or mae to minimise under the rating objective (default "
            "rmse under the rating objective, else ndcg@10).",
        )
        parser.add_argument("--parallel", type=int, help="Trials at once (default: every worker process answering).")
        parser.add_argument(
            "--space", help='JSON: {"ease": {"l2": {"low": 1, "high": 1e4, "log": true}}}; default: declared ranges.'
        )
        parser.add_argument(
            "--param", action="append", default=[], metavar="ALGORITHM.KEY=VALUE", help="A value every trial takes."
        )
        parser.add_argument("--wait", action="store_true", help="Follow the study; print its best trial as JSON.")
        parser.add_argument("--timeout", type=float, default=0, help="With --wait: give up after this many seconds.")

    def handle(self, *args, scenario: str, wait: bool, timeout: float, **options):
        found = Scenario.objects.filter(slug=scenario).first()
        if found is None:
            raise CommandError(f"no scenario {scenario!r}")
        try:
            study = study_create(
                scenario=found,
                algorithms=options["algorithm"] or [found.algorithm],
                search_space=_json(options["space"]),
                fixed_params=_fixed(options["param"]),
                objective=options["objective"],
                max_trials=options["trials"],
                max_seconds=options["seconds"],
                parallel_trials=options["parallel"],
            )
        except DomainError as error:
            raise CommandError(f"{error}: {json.dumps(error.detail)}") from error
        self.stderr.write(f"study {study.pk} on {found.slug}: {', '.join(study.algorithms)}, {study.objective}")
        if wait:
            self._follow(study.pk, timeout)

    def _follow(self, study_id: int, timeout: float) -> None:
        started, last = time.monotonic(), None
        while True:
            study = Study.objects.get(pk=study_id)
            counts = {status: study.trials.filter(status=status).count() for status in ("succeeded", "pruned")}
            line = f"study {study.pk}: {study.status}, {study.trials.count()} trials ({counts})"
            if line != last:
                self.stderr.write(line)
                last = line
            if study.is_finished:
                break
            if timeout and time.monotonic() - started > timeout:
                raise CommandError(f"study {study_id} still running after {timeout:g} s (it goes on)")
            time.sleep(1.0)
        best = study.best_run
        summary = {"study": study.pk, "status": study.status, "error": study.error or None}
        if best is not None:
            summary |= {"best_run": best.pk, "algorithm": best.algorithm, "params": best.params}
            summary |= {"why": study.best_reason}
            summary |= {"validation": best.validation_metrics, "test": best.metrics}
        self.stdout.write(json.dumps(summary, indent=2, default=str))


def _json(text: str | None) -> dict | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise CommandError(f"--space is not JSON: {error}") from error
    if not isinstance(value, dict):
        raise CommandError("--space must be a JSON object")
    return value


def _fixed(pairs: list[str]) -> dict:
    fixed: dict[str, dict] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        algorithm, dot, name = key.partition(".")
        if not separator or not dot or not name:
            raise CommandError(f"--param {pair!r}: expected ALGORITHM.KEY=VALUE")
        fixed.setdefault(algorithm, {})[name] = value  # the registry coerces strings to each parameter's type
    return fixed
