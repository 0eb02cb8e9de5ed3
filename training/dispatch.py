"""The one place where training's Celery tasks are sent.

Runs, embedding jobs and matrix jobs use their rows as a transactional outbox: the row is committed first, its task is
sent once the transaction commits, and a send that reached the broker is recorded on the row
(``dispatched_at``, ``dispatch_attempts``, ``task_id``). A send that fails (the broker is down) is logged and
left to the sweeper (``training.sweeper``), which sends again, so a request never fails after its row was
committed. Tasks are sent by their registered name rather than imported: ``training.tasks`` calls the
services that call this module, so importing the tasks here would close an import cycle.
"""

import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from recsys_site.celery import app
from training.models import EmbeddingJob, MatrixJob, TrainingRun

logger = logging.getLogger(__name__)

TRAINING_RUN = "training.run"
EMBED_ITEMS = "training.embed_items"
GROUP_MATRIX = "training.group_matrix"
TASK_NAMES = (TRAINING_RUN, EMBED_ITEMS, GROUP_MATRIX)
EMBED_QUEUE = "cpu"


def training_run_dispatch(*, run: TrainingRun) -> None:
    """Send the run to its queue once the transaction commits (the sweeper retries a failed send)."""
    run_id, queue = run.pk, run.queue
    transaction.on_commit(lambda: training_run_send(run_id=run_id, queue=queue))


def training_run_send(*, run_id: int, queue: str) -> bool:
    """Send one message for the run now and record it on the row; False when the broker refused it."""
    return _send(TrainingRun, TRAINING_RUN, row_id=run_id, queue=queue)


def embedding_job_dispatch(*, job: EmbeddingJob) -> None:
    """Send the embedding refresh once the transaction commits (the sweeper retries a failed send)."""
    job_id = job.pk
    transaction.on_commit(lambda: embedding_job_send(job_id=job_id))


def embedding_job_send(*, job_id: int) -> bool:
    """Send one message for the job now and record it on the row; False when the broker refused it."""
    return _send(EmbeddingJob, EMBED_ITEMS, row_id=job_id, queue=EMBED_QUEUE)


def matrix_job_dispatch(*, job: MatrixJob) -> None:
    """Send the matrix job to the cpu queue once the transaction commits (the sweeper retries a failed send)."""
    job_id = job.pk
    transaction.on_commit(lambda: matrix_job_send(job_id=job_id))


def matrix_job_send(*, job_id: int) -> bool:
    """Send one message for the job now and record it on the row; False when the broker refused it."""
    return _send(MatrixJob, GROUP_MATRIX, row_id=job_id, queue=EMBED_QUEUE)


Outbox = type[TrainingRun] | type[EmbeddingJob] | type[MatrixJob]


def _send(model: Outbox, task: str, *, row_id: int, queue: str) -> bool:
    try:
        result = app.send_task(task, args=(row_id,), queue=queue)
    except BrokerUnavailable as error:
        logger.warning(
            "%s %s not sent, the broker is unavailable (the sweeper sends it again): %s", task, row_id, error
        )
        return False
    model.objects.filter(pk=row_id).update(
        task_id=result.id, dispatched_at=timezone.now(), dispatch_attempts=F("dispatch_attempts") + 1
    )
    return True
