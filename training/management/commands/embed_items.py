"""Refresh the item text embeddings from the command line, on a worker or in this process."""

import json

from django.core.management.base import BaseCommand

from training.embeddings_service import embedding_job_create, embedding_job_execute
from training.management.follow import job_follow, job_succeeded
from training.models import EmbeddingJob, RunStatus


class Command(BaseCommand):
    help = (
        "Queue a refresh of the item text embeddings (only items whose text changed are embedded again); "
        "with --wait, follow it and print its counts; with --inline, run it in this process."
    )

    def add_arguments(self, parser):
        parser.add_argument("--wait", action="store_true", help="Show progress until the job ends; print counts.")
        parser.add_argument("--inline", action="store_true", help="Run here instead of on a Celery worker.")
        parser.add_argument("--device", default="cpu", help="With --inline: cpu (default) or cuda.")
        parser.add_argument("--batch-size", type=int, default=256, help="With --inline: texts per encoder batch.")
        parser.add_argument("--timeout", type=float, default=0, help="With --wait: give up after this many seconds.")

    def handle(self, *args, wait: bool, inline: bool, device: str, batch_size: int, timeout: float, **options):
        job = embedding_job_create(dispatch=not inline)
        name = f"embedding job {job.pk}"
        if inline:
            self.stderr.write(f"{name}: running here on {device}")
            embedding_job_execute(job_id=job.pk, device=device, batch_size=batch_size, progress=self._print_progress)
            job.refresh_from_db()
            job = job_succeeded(job, name=name)
        else:
            self.stderr.write(f"queued {name}")
            if not wait:
                return
            job = job_follow(job, line=_progress_line, write=self.stderr.write, timeout=timeout, name=name)
        self.stdout.write(json.dumps({"job": job.pk, "status": job.status, "counts": job.counts}, indent=2))

    def _print_progress(self, done: int, total: int) -> None:
        self.stderr.write(f"embedded {done}/{total} items")


def _progress_line(job: EmbeddingJob) -> str:
    line = f"embedding job {job.pk}: {job.status} {job.progress:.0%}"
    if job.status == RunStatus.RUNNING and job.counts.get("total"):
        line += f" ({job.counts['done']}/{job.counts['total']} items)"
    return line
