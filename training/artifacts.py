"""Model artifacts on disk: a folder of tensors and JSON, checked against its sha256 before use.

Layout of ``<ARTIFACT_ROOT>/<scenario>/run-<id>/``: the algorithm's own ``model.safetensors``
and ``metadata.json`` plus ``index.safetensors`` (dense index → database id of users and
items). The checksum covers every file by name and content, so a changed, added or
removed file is detected.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from recsys_site.errors import DomainError
from training.algorithms.base import ARTIFACT_METADATA, ARTIFACT_TENSORS, Recommender

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


def artifact_load(*, directory: Path, sha256: str, device: str = "cpu") -> LoadedModel:
    """Load a verified artifact; raise :class:`ArtifactError` when anything does not match."""
    if not directory.is_dir():
        raise ArtifactError(f"artifact {directory} does not exist")
    names = {path.name for path in directory.iterdir()}
    if names != EXPECTED_FILES:
        raise ArtifactError(f"artifact {directory} holds {sorted(names)}, expected {sorted(EXPECTED_FILES)}")
    actual = artifact_checksum(directory)
    if actual != sha256:
        raise ArtifactError(
            f"artifact {directory} fails its checksum (stored {sha256[:12]}…, found {actual[:12]}…): "
            "it was changed after training and is refused"
        )
    try:
        index = load_file(str(directory / INDEX_FILE))
        model = Recommender.load(directory, device=device)
    except (SafetensorError, json.JSONDecodeError, KeyError, ValueError, OSError) as error:
        raise ArtifactError(f"artifact {directory} is not a readable model: {error}") from error
    return LoadedModel(
        model=model,
        user_ids=index["user_ids"].numpy(),
        item_ids=index["item_ids"].numpy(),
        item_popularity=index["item_popularity"].numpy(),
    )
