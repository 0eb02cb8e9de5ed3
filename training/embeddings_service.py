"""Item text embeddings: refresh the stored vectors, read them as a matrix, and run refresh jobs.

Lives in ``training`` (not ``catalog``) because it drives the encoder in ``training.content``; the
vectors themselves are ``catalog.ItemEmbedding`` rows. An item is embedded again only when the
sha256 of its text (:func:`training.content.item_text`) differs from the stored one, so a refresh
after a refresh computes nothing. Items with no text at all get the zero vector.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.utils import timezone

from catalog.models import Item, ItemEmbedding
from catalog.services import chunked
from recsys_site.errors import without_server_paths
from recsys_site.serving_version import catalog_version_bump
from training.content import EMBEDDING_DIMENSION, ENCODER_NAME, TextEncoder, item_text, text_hash
from training.dispatch import embedding_job_dispatch
from training.models import EmbeddingJob, RunStatus
from training.progress import Heartbeat
from training.resilience import with_database_retry

logger = logging.getLogger(__name__)

RefreshProgress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` with the number of items embedded so far and to embed."""

_SCAN_CHUNK = 5000  # items read (and hashes compared) per query
_TEXT_FIELDS = ("id", "title", "categories", "description")


@dataclass(frozen=True)
class _Stale:
    item_id: int
    text: str
    sha256: str
    exists: bool


def item_embeddings_refresh(
    *,
    item_ids: Sequence[int] | np.ndarray | None = None,
    progress: RefreshProgress | None = None,
    batch_size: int = 256,
    device: str = "cpu",
    limit: int | None = None,
) -> dict[str, int]:
    """Embed the items (all active ones, or ``item_ids``) whose text changed or that have no vector yet, at most
    ``limit`` of them (the first in id order; the others are left for a later refresh).

    Each batch of ``batch_size`` items is stored as it is computed (an upsert), so work done before
    a crash is kept. Returns counts: ``items`` examined, ``computed`` (``created`` + ``updated``),
    ``unchanged``, and ``empty`` (items without text, stored as zero vectors).
    """
    stale, examined = _stale_items(item_ids)
    counts = {"items": examined, "unchanged": examined - len(stale)}
    stale = stale[:limit]
    counts["computed"] = len(stale)
    counts["created"] = sum(1 for row in stale if not row.exists)
    counts["updated"] = len(stale) - counts["created"]
    counts["empty"] = sum(1 for row in stale if not row.text)
    if progress is not None:
        progress(0, len(stale))
    if not stale:
        return counts
    encoder = TextEncoder.shared(device) if counts["empty"] < len(stale) else None
    for start in range(0, len(stale), batch_size):
        batch = stale[start : start + batch_size]
        texts = [row.text for row in batch]
        vectors = (
            encoder.encode(texts, batch_size=batch_size)
            if encoder is not None
            else np.zeros((len(batch), EMBEDDING_DIMENSION), dtype=np.float32)
        )
        _store(batch, vectors)
        if progress is not None:
            progress(start + len(batch), len(stale))
    return counts


def item_embedding_matrix(
    item_ids: Sequence[int] | np.ndarray, *, encoder: str = ENCODER_NAME
) -> tuple[np.ndarray, np.ndarray]:
    """Stored vectors of ``item_ids`` in that order: float32 ``(n, 384)`` and a bool ``(n,)`` present mask.

    Rows of items without a stored vector are zero (and ``False`` in the mask). Vectors are
    returned as stored; call :func:`item_embeddings_refresh` first for up-to-date ones.
    """
    ids = np.asarray(item_ids, dtype=np.int64)
    matrix = np.zeros((len(ids), EMBEDDING_DIMENSION), dtype=np.float32)
    present = np.zeros(len(ids), dtype=bool)
    position = {int(item_id): index for index, item_id in enumerate(ids)}
    for chunk in chunked(ids.tolist(), _SCAN_CHUNK):
        rows = ItemEmbedding.objects.filter(item_id__in=chunk, encoder=encoder, dimension=EMBEDDING_DIMENSION)
        for item_id, vector in rows.values_list("item_id", "vector"):
            index = position[item_id]
            matrix[index] = np.frombuffer(bytes(vector), dtype="<f4")
            present[index] = True
    return matrix, present


def _stale_items(item_ids: Sequence[int] | np.ndarray | None) -> tuple[list[_Stale], int]:
    """Items whose text hash differs from their stored embedding's (or that have none), and how many were examined."""
    chunks = _active_item_rows() if item_ids is None else _item_rows(np.asarray(item_ids, dtype=np.int64).tolist())
    stale: list[_Stale] = []
    examined = 0
    for rows in chunks:
        examined += len(rows)
        stored = dict(
            ItemEmbedding.objects.filter(
                item_id__in=[row[0] for row in rows], encoder=ENCODER_NAME, dimension=EMBEDDING_DIMENSION
            ).values_list("item_id", "text_sha256")
        )
        for item_id, title, categories, description in rows:
            text = item_text(title, categories, description)
            sha256 = text_hash(text)
            if stored.get(item_id) != sha256:
                stale.append(_Stale(item_id, text, sha256, exists=item_id in stored))
    return stale, examined


def _active_item_rows() -> Iterator[list[tuple]]:
    rows = Item.objects.filter(is_active=True).order_by("id").values_list(*_TEXT_FIELDS)
    return chunked(rows.iterator(chunk_size=_SCAN_CHUNK), _SCAN_CHUNK)


def _item_rows(item_ids: list[int]) -> Iterator[list[tuple]]:
    for chunk in chunked(item_ids, _SCAN_CHUNK):
        yield list(Item.objects.filter(id__in=chunk).order_by("id").values_list(*_TEXT_FIELDS))


def _store(batch: list[_Stale], vectors: np.ndarray) -> None:
    rows = [
        ItemEmbedding(
            item_id=row.item_id,
            encoder=ENCODER_NAME,
            text_sha256=row.sha256,
            dimension=EMBEDDING_DIMENSION,
            vector=np.ascontiguousarray(vector, dtype="<f4").tobytes(),
        )
        for row, vector in zip(batch, vectors, strict=True)
    ]
    ItemEmbedding.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["item", "encoder"],
        update_fields=["text_sha256", "dimension", "vector", "updated_at"],
    )
    catalog_version_bump()  # items added after training that had no vector can now be scored by content


# --- refresh jobs ----------------------------------------------------------------------------


def embedding_job_create(*, created_by: Any = None, dispatch: bool = True) -> EmbeddingJob:
    """Queue a refresh of every active item's embedding; the task is sent once the transaction commits.

    Without ``dispatch`` the job is only recorded, for a caller that runs it in-process
    (``manage.py embed_items --inline``) with :func:`embedding_job_execute`.
    """
    job = EmbeddingJob.objects.create(
        encoder=ENCODER_NAME,
        created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
    )
    if dispatch:
        embedding_job_dispatch(job=job)
    return job


def embedding_job_execute(
    *, job_id: int, device: str = "cpu", batch_size: int = 256, progress: RefreshProgress | None = None
) -> str:
    """Claim a queued job and run the refresh, recording progress and counts; return its final status.

    A job already claimed (a redelivered message) is left alone. ``progress``, if given, is called
    after each batch as well (the command line prints it).
    """
    claimed = EmbeddingJob.objects.filter(pk=job_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now(), device=device, progress=0.0
    )
    if not claimed:
        status = EmbeddingJob.objects.filter(pk=job_id).values_list("status", flat=True).first()
        logger.info("embedding job %s not claimed (status %s)", job_id, status)
        return status or "missing"
    try:
        with Heartbeat(EmbeddingJob, job_id):
            counts = item_embeddings_refresh(
                progress=_JobProgress(job_id, also=progress), batch_size=batch_size, device=device
            )
    except Exception as error:  # the failure is recorded on the job, never lost
        logger.exception("embedding job %s failed", job_id)
        return embedding_job_finish(
            job_id=job_id,
            status=RunStatus.FAILED,
            error=without_server_paths("".join(traceback.format_exception_only(error)).strip()),
        )
    return embedding_job_finish(job_id=job_id, status=RunStatus.SUCCEEDED, counts=counts)


def embedding_job_finish(*, job_id: int, status: str, error: str = "", counts: dict | None = None) -> str:
    """Move a running job to ``status``; a job finished by someone else keeps their verdict."""
    fields: dict[str, Any] = {"status": status, "error": error, "finished_at": timezone.now()}
    if counts is not None:
        fields["counts"] = counts
    if status == RunStatus.SUCCEEDED:
        fields["progress"] = 1.0
    done = with_database_retry(
        lambda: EmbeddingJob.objects.filter(pk=job_id, status=RunStatus.RUNNING).update(**fields),
        what=f"finishing embedding job {job_id}",
    )
    if done:
        return status
    return EmbeddingJob.objects.filter(pk=job_id).values_list("status", flat=True).first() or "missing"


class _JobProgress:
    """Records ``done / total`` on the job row after each batch, and passes it on to ``also``."""

    def __init__(self, job_id: int, *, also: RefreshProgress | None = None) -> None:
        self.job_id = job_id
        self.also = also

    def __call__(self, done: int, total: int) -> None:
        fields = {
            "progress": round(min(done / total if total else 1.0, 1.0), 4),
            "counts": {"done": done, "total": total},
            "heartbeat_at": timezone.now(),
        }
        with_database_retry(
            lambda: EmbeddingJob.objects.filter(pk=self.job_id, status=RunStatus.RUNNING).update(**fields),
            what=f"progress of embedding job {self.job_id}",
        )
        if self.also is not None:
            self.also(done, total)
