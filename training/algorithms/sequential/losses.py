"""The next-item losses of the sequential models."""

from __future__ import annotations

import torch
import torch.nn.functional as F

VERY_LOW_LOGIT = -1e9  # a finite stand-in for −inf: softmax gives exactly 0, and no NaN appears in gradients


def sampled_softmax_loss(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    items: torch.Tensor,
    negatives: int,
    item_logits: torch.Tensor | None = None,
) -> torch.Tensor:
    """Softmax cross-entropy over each target and ``negatives`` uniformly drawn items shared by the batch.

    ``hidden`` ``(P, d)``, ``targets`` ``(P,)``, ``items`` ``(n_items, d)``; ``item_logits`` ``(n_items,)``
    is added to each item's logit (a bias; ``VERY_LOW_LOGIT`` leaves a drawn item out). A drawn item equal to
    the target is masked out; uniform draws need no log-probability correction (it is a constant).
    """
    drawn = torch.randint(0, items.shape[0], (negatives,), device=hidden.device)
    positive = (hidden * items[targets]).sum(-1, keepdim=True)
    negative = hidden @ items[drawn].T
    if item_logits is not None:
        positive = positive + item_logits[targets, None]
        negative = negative + item_logits[drawn]
    negative = negative.masked_fill(drawn[None, :] == targets[:, None], VERY_LOW_LOGIT)
    logits = torch.cat([positive, negative], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(targets), dtype=torch.long, device=hidden.device))
