"""Item content features shared by the content-aware models (no Django imports).

Features are ``InteractionData.item_features``: ``(n_items, f)`` float32, for example the items' 384-dimension
text embeddings. An item whose features are all zero has no content (no text): it is kept at zero everywhere.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from training.interactions import InteractionData


def item_features(data: InteractionData, *, model: str) -> np.ndarray:
    """``data.item_features`` as float32 ``(n_items, f)``; a clear error when ``model`` gets none or the wrong shape."""
    features = data.item_features
    if features is None:
        raise ValueError(
            f"the {model} model needs item features (InteractionData.item_features, (n_items, d) float32), "
            "e.g. the items' text embeddings; none were given"
        )
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or features.shape[0] != data.n_items:
        raise ValueError(f"item_features must have shape (n_items={data.n_items}, d), not {features.shape}")
    return features


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; zero rows stay zero. float32, C-contiguous."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.ascontiguousarray(matrix / np.maximum(norms, 1e-12), dtype=np.float32)


def principal_directions(features: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean ``(f,)`` and top ``rank`` principal directions ``(f, rank)`` of ``features``' unit rows.

    Computed in float64 over the rows that have content (zero rows are left out). Columns beyond the
    features' own rank are zero. Both come back in ``features``' dtype and device.
    """
    unit = F.normalize(features.double(), dim=1)
    present = unit[unit.abs().sum(1) > 0]
    size = features.shape[1]
    mean = present.mean(0) if len(present) else unit.new_zeros(size)
    basis = unit.new_zeros(size, rank)
    if len(present):
        _, _, right = torch.linalg.svd(present - mean, full_matrices=False)
        kept = min(rank, len(right))
        basis[:, :kept] = right[:kept].T
    return mean.to(features), basis.to(features)
