"""Artifacts in a storage every host can read, beside the local folders the models are loaded from.

By default the folder under ``ARTIFACT_ROOT`` is the storage (one host, or a filesystem shared by all). With an
``artifacts`` storage configured (S3-compatible object storage through django-storages, see
``RECSYS_ARTIFACT_S3_BUCKET``), a worker publishes each artifact's files under the folder's path relative to
``ARTIFACT_ROOT``, and a web process that lacks the folder fetches them into it before loading; the checksum
check of :func:`training.artifacts.artifact_load` then applies to what was fetched.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages


def _storage() -> Storage | None:
    return storages["artifacts"] if "artifacts" in settings.STORAGES else None


def _key(directory: Path) -> str | None:
    try:
        return directory.relative_to(settings.ARTIFACT_ROOT).as_posix()
    except ValueError:
        return None  # not under ARTIFACT_ROOT: only ever local


def artifact_publish(*, directory: Path) -> None:
    """Copy the artifact folder's files to the shared storage (a no-op without one)."""
    storage, key = _storage(), _key(directory)
    if storage is None or key is None:
        return
    for path in sorted(directory.iterdir()):
        with path.open("rb") as handle:
            storage.save(f"{key}/{path.name}", File(handle))


def artifact_fetch(*, directory: Path) -> None:
    """Fill a missing local artifact folder from the shared storage; leave it missing if the storage lacks it."""
    storage, key = _storage(), _key(directory)
    if storage is None or key is None or directory.is_dir():
        return
    _, names = storage.listdir(key)
    if not names:
        return
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}-"))
    for name in names:
        with storage.open(f"{key}/{name}", "rb") as source, (staging / name).open("wb") as target:
            shutil.copyfileobj(source, target)
    try:
        staging.rename(directory)  # whole or not at all: a concurrent reader never sees half a folder
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another thread or process fetched it first


def artifact_unpublish(*, directory: Path) -> None:
    """Delete the artifact's files from the shared storage (a no-op without one)."""
    storage, key = _storage(), _key(directory)
    if storage is None or key is None:
        return
    _, names = storage.listdir(key)
    for name in names:
        storage.delete(f"{key}/{name}")
