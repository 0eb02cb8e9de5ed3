"""The one place where training's Celery tasks are sent.

Each function sends its task once the current transaction commits (so the worker never reads a row
that is not there yet, and a rolled-back request sends nothing). Tasks are sent by their registered
name rather than imported: ``training.tasks`` calls the services that call this module, so importing
the tasks here would close an import cycle.
"""

from django.db import transaction

from recsys_site.celery import app
from training.models import EmbeddingJob, TrainingRun

TRAINING_RUN = "training.run"
EMBED_ITEMS = "training.embed_items"
GROUP_MATRIX = "training.group_matrix"
TASK_NAMES = (TRAINING_RUN, EMBED_ITEMS, GROUP_MATRIX)


def training_run_dispatch(*, run: TrainingRun) -> None:
    """Send the run to its queue after commit and record the task id on the run."""
    run_id, queue = run.pk, run.queue

    def send() -> None:
        result = app.send_task(TRAINING_RUN, args=(run_id,), queue=queue)
        TrainingRun.objects.filter(pk=run_id, task_id="").update(task_id=result.id)

    transaction.on_commit(send)


def embedding_job_dispatch(*, job: EmbeddingJob) -> None:
    """Send the embedding refresh to the cpu queue after commit and record the task id on the job."""
    job_id = job.pk

    def send() -> None:
        result = app.send_task(EMBED_ITEMS, args=(job_id,), queue="cpu")
        EmbeddingJob.objects.filter(pk=job_id, task_id="").update(task_id=result.id)

    transaction.on_commit(send)


def group_matrix_dispatch(*, group_id: int) -> None:
    """Fill in the group's missing matrix cells on a worker after commit."""
    transaction.on_commit(lambda: app.send_task(GROUP_MATRIX, args=(group_id,)))
