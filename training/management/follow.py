"""Following a queued job from a management command until it finishes."""

import time
from collections.abc import Callable
from typing import TypeVar

from django.core.management.base import CommandError

from training.models import FINISHED, EmbeddingJob, RunStatus, TrainingRun

JobT = TypeVar("JobT", TrainingRun, EmbeddingJob)


def job_follow(job: JobT, *, line: Callable[[JobT], str], write: Callable[[str], None], timeout: float,
               name: str) -> JobT:  # fmt: skip
    """Read the job every half second and ``write`` its ``line`` whenever that changes, until it finishes; the
    finished job as :func:`job_succeeded` checks it. After ``timeout`` seconds (0: no limit) a CommandError says the
    job ``name`` goes on without us."""
    started, last = time.monotonic(), None
    while True:
        job = type(job).objects.get(pk=job.pk)
        text = line(job)
        if text != last:
            write(text)
            last = text
        if job.status in FINISHED:
            return job_succeeded(job, name=name)
        if timeout and time.monotonic() - started > timeout:
            raise CommandError(f"{name} still {job.status} after {timeout:g} s (it goes on)")
        time.sleep(0.5)


def job_succeeded(job: JobT, *, name: str) -> JobT:
    """``job`` when it succeeded; otherwise a CommandError saying how the job ``name`` ended."""
    if job.status != RunStatus.SUCCEEDED:
        raise CommandError(f"{name} ended {job.status}: {job.error}")
    return job
