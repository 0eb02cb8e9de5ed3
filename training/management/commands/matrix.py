"""The scenario × model matrix of a group from the command line: show it, or compute its missing and stale cells."""

import json
import time

from django.core.management.base import BaseCommand, CommandError

from recsys_site.errors import DomainError, error_text
from scenarios.models import Scenario
from training.api.matrix import MatrixSerializer, matrix_payload
from training.matrix import baselines_parse, group_matrix, matrix_job_create, matrix_job_execute
from training.models import FINISHED, MatrixJob, RunStatus


class Command(BaseCommand):
    help = (
        "show GROUP: the matrix (rows runs, columns members, one metric; --json for every metric at every K). "
        "compute GROUP: queue the computation of missing and stale cells (--wait to follow it, --inline to run here)."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["show", "compute"])
        parser.add_argument("group", help="The group scenario's slug.")
        parser.add_argument("--metric", default="ndcg@10", help="show: the metric in the table (default ndcg@10).")
        parser.add_argument("--baseline", action="append", default=[], help="show: MEMBER:RUN_ID (repeatable).")
        parser.add_argument("--json", action="store_true", help="show: the whole matrix as the API gives it.")
        parser.add_argument("--wait", action="store_true", help="compute: follow the job until it ends.")
        parser.add_argument("--inline", action="store_true", help="compute: run in this process, not on a worker.")
        parser.add_argument("--timeout", type=float, default=0, help="compute --wait: give up after this many s.")

    def handle(self, *args, action: str, group: str, **options):
        scenario = Scenario.objects.filter(slug=group).first()
        if scenario is None:
            raise CommandError(f"no scenario {group!r}")
        try:
            if action == "show":
                self._show(scenario, options)
            else:
                self._compute(scenario, options)
        except DomainError as error:
            raise CommandError(error_text(error)) from error

    def _show(self, group: Scenario, options: dict) -> None:
        matrix = group_matrix(group=group, baselines=baselines_parse(group=group, values=options["baseline"]))
        if options["json"]:
            self.stdout.write(json.dumps(MatrixSerializer(matrix_payload(matrix)).data, indent=2, default=str))
            return
        metric = options["metric"]
        self.stdout.write(f"{group.slug}: {metric}; split {json.dumps(matrix.settings)}")
        self.stdout.write("\t".join(["run", *(member.slug for member in matrix.members)]))
        for run in matrix.runs:
            cells = [matrix.cells[(run.pk, member.pk)] for member in matrix.members]
            self.stdout.write(
                "\t".join([f"{run.pk} {run.algorithm} ({run.scenario.slug})", *map(_text(metric), cells)])
            )
        baselines = ", ".join(f"{m.slug}: run {matrix.baselines[m.pk]}" for m in matrix.members)
        self.stdout.write(f"baselines: {baselines}")

    def _compute(self, group: Scenario, options: dict) -> None:
        job = matrix_job_create(group=group, dispatch=not options["inline"])
        self.stderr.write(f"matrix job {job.pk}: " + ("running here" if options["inline"] else "queued"))
        if options["inline"]:
            matrix_job_execute(job_id=job.pk)
        elif not options["wait"]:
            return
        job = self._follow(job.pk, options["timeout"])
        if job.status != RunStatus.SUCCEEDED:
            raise CommandError(f"matrix job {job.pk} ended {job.status}: {job.error}")
        self.stdout.write(json.dumps({"job": job.pk, "status": job.status, "cells_computed": job.cells_computed}))

    def _follow(self, job_id: int, timeout: float) -> MatrixJob:
        started = time.monotonic()
        while True:
            job = MatrixJob.objects.get(pk=job_id)
            if job.status in FINISHED:
                return job
            if timeout and time.monotonic() - started > timeout:
                raise CommandError(f"matrix job {job_id} still {job.status} after {timeout:g} s (it goes on)")
            time.sleep(0.5)


def _text(metric: str):
    def text(cell) -> str:
        if cell.state == "n/a":
            return "n/a"
        value = cell.metrics.get(metric)
        shown = "–" if value is None else f"{value:.4f}"
        return f"{shown} (stale)" if cell.state == "stale" else shown

    return text
