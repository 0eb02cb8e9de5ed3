"""Recommendation algorithms in plain PyTorch and NumPy (no Django imports).

Importing this package registers every built-in algorithm.
"""

from training.algorithms import (  # noqa: F401
    adapted_ease,
    auto,
    biased_mf,
    blend,
    bpr,
    content,
    content_ridge,
    distill,
    ease,
    gru4rec,
    ials,
    item_knn,
    neural_mf,
    popularity,
    sasrec,
    star,
)
