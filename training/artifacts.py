"""Model artifacts on disk: a folder of tensors and JSON, checked against its sha256 before use.

Layout of ``<ARTIFACT_ROOT>/<scenario>/run-<id>/``: the algorithm's own ``model.safetensors``
and ``metadata.json`` plus ``index.safetensors`` (dense index → database id of users and
items). The checksum covers every file by name and content, so a changed, added or
removed file is detected.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from recsys_site.errors import DomainError
from training.algorithms.base import ARTIFACT_METADATA, ARTIFACT_TENSORS, Recommender

logger = logging.getLogger(__name__)

INDEX_FILE = "index.safetensors"
EXPECTED_FILES = {ARTIFACT_TENSORS, ARTIFACT_METADATA, INDEX_FILE}


class ArtifactError(DomainError):
    """The artifact is missing, altered, or not one of ours; it must not be loaded."""

    status_code = 503


@dataclass(frozen=True)
class LoadedModel:
    model: Recommender
    user_ids: np.ndarray  # (n_users,) int64 database ids, position = dense index
    item_ids: np.ndarray  # (n_items,) int64
    item_popularity: np.ndarray  # (n_items,) float32


@dataclass(frozen=True)
class SavedArtifact:
    path: Path
    sha256: str
    size: int


def artifact_save(
    *, model: Recommender, user_ids: np.ndarray, item_ids: np.ndarray, item_popularity: np.ndarray, directory: Path
) -> SavedArtifact:
    """Write the model and its index into a fresh ``directory`` (replaced if present).

    ``item_popularity`` ``(n_items,)`` (training users per item) serves users the model does not know.
    """
    if directory.exists():
        shutil.rmtree(directory)
    model.save(directory)
    save_file(
        {
            "user_ids": torch.from_numpy(np.ascontiguousarray(user_ids, dtype=np.int64)),
            "item_ids": torch.from_numpy(np.ascontiguousarray(item_ids, dtype=np.int64)),
            "item_popularity": torch.from_numpy(np.ascontiguousarray(item_popularity, dtype=np.float32)),
        },
        str(directory / INDEX_FILE),
    )
    size = sum(path.stat().st_size for path in directory.iterdir())
    return SavedArtifact(path=directory, sha256=artifact_checksum(directory), size=size)


def artifact_checksum(directory: Path) -> str:
    """sha256 over each file's name and the sha256 of its content, in name order."""
    digest = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).hexdigest().encode() + b"\n")
    return digest.hexdigest()


def artifact_load(*, directory: Path, sha256: str, device: str = "cpu", name: str = "the artifact") -> LoadedModel:
    """Load a verified artifact; raise :class:`ArtifactError` when anything does not match.

    ``name`` says which artifact in the error's message (``the artifact of run 12``): messages are shown to
    clients and never hold the server's paths, which go to the log.
    """
    artifact_verify(directory=directory, sha256=sha256, name=name)
    try:
        index = load_file(str(directory / INDEX_FILE))
        model = Recommender.load(directory, device=device)
    except (SafetensorError, json.JSONDecodeError, KeyError, ValueError, OSError) as error:
        logger.warning("artifact %s is not a readable model: %s", directory, error)
        raise ArtifactError(f"{name} is not a readable model") from error
    return LoadedModel(
        model=model,
        user_ids=index["user_ids"].numpy(),
        item_ids=index["item_ids"].numpy(),
        item_popularity=index["item_popularity"].numpy(),
    )


def artifact_verify(*, directory: Path, sha256: str, name: str = "the artifact") -> None:
    """Raise :class:`ArtifactError` unless ``directory`` holds exactly the expected files, matching ``sha256``."""
    if not directory.is_dir():
        logger.warning("artifact %s does not exist", directory)
        raise ArtifactError(f"{name} does not exist")
    names = {path.name for path in directory.iterdir()}
    if names != EXPECTED_FILES:
        logger.warning("artifact %s holds %s", directory, sorted(names))
        raise ArtifactError(f"{name} holds {sorted(names)}, expected {sorted(EXPECTED_FILES)}")
    actual = artifact_checksum(directory)
    if actual != sha256:
        logger.warning("artifact %s fails its checksum", directory)
        raise ArtifactError(
            f"{name} fails its checksum (stored {sha256[:12]}…, found {actual[:12]}…): "
            "it was changed after training and is refused"
        )


def artifact_file_stamp(directory: Path, *, name: str = "the artifact") -> tuple[tuple[str, int, int], ...]:
    """Each file's name, size and modification time: what changes when the files do, read without reading them."""
    try:
        stats = ((path.name, path.stat()) for path in directory.iterdir())
        return tuple(sorted((name, stat.st_size, stat.st_mtime_ns) for name, stat in stats))
    except OSError as error:
        logger.warning("artifact %s cannot be listed: %s", directory, error)
        raise ArtifactError(f"{name} does not exist") from error


def artifact_user_ids(*, directory: Path) -> np.ndarray | None:
    """The database ids of the users the artifact has rows for, read from its index without verifying the
    artifact (a quick look to find the artifacts that hold a user); None when the index cannot be read."""
    try:
        with safe_open(str(directory / INDEX_FILE), framework="pt") as index:
            return index.get_tensor("user_ids").numpy()
    except (SafetensorError, OSError, KeyError):
        return None


@dataclass(frozen=True)
class ArtifactRewrite:
    """A rewritten copy of an artifact, written to a staging folder beside it: :meth:`replace` puts it in place
    (once the database records its checksum), :meth:`abandon` drops it."""

    directory: Path
    saved: SavedArtifact  # the new copy, in the staging folder

    def replace(self) -> None:
        previous = self.directory.with_name(self.directory.name + ".previous")
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(self.directory, previous)
        os.replace(self.saved.path, self.directory)
        shutil.rmtree(previous, ignore_errors=True)

    def abandon(self) -> None:
        shutil.rmtree(self.saved.path, ignore_errors=True)


def artifact_forget_users(
    *, directory: Path, sha256: str, user_ids: Collection[int], name: str = "the artifact"
) -> ArtifactRewrite | None:
    """A copy of the artifact with everything stored of these users (database ids) cleared
    (:meth:`Recommender.forget_users`), staged for :meth:`ArtifactRewrite.replace`; None when it holds none of them.

    The index keeps their ids (rows stay aligned): an id names no one once its end user is deleted.
    """
    loaded = artifact_load(directory=directory, sha256=sha256, name=name)
    positions = np.flatnonzero(np.isin(loaded.user_ids, np.fromiter(user_ids, dtype=np.int64)))
    if not len(positions):
        return None
    loaded.model.forget_users(positions)
    saved = artifact_save(
        model=loaded.model,
        user_ids=loaded.user_ids,
        item_ids=loaded.item_ids,
        item_popularity=loaded.item_popularity,
        directory=directory.with_name(directory.name + ".rewrite"),
    )
    return ArtifactRewrite(directory=directory, saved=saved)
