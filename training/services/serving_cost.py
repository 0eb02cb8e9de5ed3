"""What serving a trained model costs: its size and the time to rank every item for a batch of users."""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import torch

SERVING_BATCH = 256


def serving_profile(model: Any, *, repeats: int = 5) -> dict[str, Any]:
    """What serving the model costs: its parameter count and the median time to rank every item for a batch
    of users (scores plus top 10), as the recommendation endpoint does."""
    users = np.arange(min(SERVING_BATCH, model.n_users))
    cuda = str(model.device).startswith("cuda")
    samples = []
    for _ in range(repeats + 1):  # the first call warms caches up and is not counted
        started = time.perf_counter()
        model.score(users).topk(min(10, model.n_items), dim=1)
        if cuda:
            torch.cuda.synchronize()
        samples.append((time.perf_counter() - started) * 1000)
    return {
        "parameters": int(model.parameter_count()),
        "latency_ms": round(statistics.median(samples[1:]), 3),
        "batch_users": len(users),
        "device": str(model.device),
    }
