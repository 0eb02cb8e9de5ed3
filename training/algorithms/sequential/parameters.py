"""The hyperparameters the sequential models share (one schema, per-model defaults)."""

from __future__ import annotations

from typing import Any

from training.algorithms.content_ridge import L2 as RIDGE_L2
from training.algorithms.content_ridge import RANK as RIDGE_RANK
from training.algorithms.params import HyperparameterError, Param, early_stopping_patience

CONTENT_MODES = ("none", "init", "side", "prior")
FINETUNE_MODES = ("all", "top")
LEARNING_RATE_SCHEDULES = ("constant", "cosine")

# How the training loop batches and repeats, and what it may do on CUDA: declared alike by every sequential model,
# the distilled student included.
TRAINING_PASSES = (
    Param("batch_size", int, 256, help="Training windows (of up to max_length positions each) per step.",
          minimum=1, maximum=1 << 16),
    Param("epochs", int, 200, help="Most passes over the training sequences.", minimum=1, maximum=2000),
)  # fmt: skip
CUDA_OPTIONS = (
    Param("mixed_precision", bool, False, help="bfloat16 autocast on CUDA (ignored on the CPU)."),
    Param("compile", bool, False, help="torch.compile the encoder on CUDA (ignored on the CPU)."),
)


def sequential_params(
    *,
    embedding_size: int = 64,
    layers: int = 2,
    learning_rate: float = 1e-3,
    architecture: tuple[Param, ...] = (),
    extra: tuple[Param, ...] = (),
) -> tuple[Param, ...]:
    """The hyperparameters the sequential models share, with per-model architecture defaults."""
    return (
        Param("embedding_size", int, embedding_size, help="Dimensions of item vectors and states.", minimum=4,
              maximum=1024, search=(16, 256), step=16),
        Param("layers", int, layers, help="Stacked encoder layers.", minimum=1, maximum=12),
        *architecture,
        Param("max_length", int, 50, help="Most recent items the model reads.", minimum=2, maximum=1000),
        Param("dropout", float, 0.2, help="Dropout on embeddings and hidden layers.", minimum=0.0, maximum=0.9,
              search=(0.0, 0.5)),
        *extra,
        Param("learning_rate", float, learning_rate, help="AdamW step size.", minimum=1e-6, maximum=1.0,
              search=(1e-4, 1e-2), log=True),
        Param("learning_rate_schedule", str, "constant", help="constant; or cosine: the step falls from "
              "learning_rate to 0 along half a cosine over epochs (early stopping still picks the epoch kept).",
              choices=LEARNING_RATE_SCHEDULES),
        Param("weight_decay", float, 0.0, help="AdamW's decoupled weight decay.", minimum=0.0, maximum=1.0,
              search=(0.0, 0.1)),
        *TRAINING_PASSES,
        early_stopping_patience(default=10, maximum=1000),
        *CUDA_OPTIONS,
        Param("content", str, "none", help="Item features: none; init (item embeddings start from them); side "
              "(a learned projection of them is added to every item's embedding); prior (every score adds a content "
              "ridge fitted before training, which alone ranks the items without events).", choices=CONTENT_MODES),
        Param("content_rank", int, 0, help="With content side: the projection reads the features' top this many "
              "principal directions (0: every dimension).", minimum=0, maximum=4096),
        Param("content_loss", float, 1.0, help="With content side: weight of a second next-item loss that scores "
              "every item by its content alone, as items without events are scored.", minimum=0.0, maximum=10.0),
        Param("prior_rank", int, RIDGE_RANK.default, help="With content prior: principal directions of the item "
              "features the content ridge reads (0: every one).", minimum=RIDGE_RANK.minimum,
              maximum=RIDGE_RANK.maximum),
        Param("prior_l2", float, RIDGE_L2.default, help="With content prior: the content ridge's penalty, relative "
              "to the product of the largest eigenvalues of its two Gram matrices.", minimum=RIDGE_L2.minimum,
              maximum=RIDGE_L2.maximum),
        Param("prior_dropout", float, 0.1, help="With content prior: share of the items each training batch scores "
              "by the prior alone, their own embedding dropped, as items without events are scored; this puts "
              "content-only scores on the scale of the others, so new items neither crowd out nor vanish behind "
              "items with events (0: off).", minimum=0.0, maximum=0.9),
        Param("prior_folds", int, 5, help="With content prior: user folds the ridge is cross-fitted on while "
              "training (each user's windows read the ridge fitted without them; 1: one ridge on everyone).",
              minimum=1, maximum=50),
        Param("finetune", str, "all", help="From a parent run: train every layer, or only the top layer, the "
              "output normalisation and the item embeddings.", choices=FINETUNE_MODES),
    )  # fmt: skip


LOSS_PARAMS = (
    Param("loss", str, "softmax", help="Full softmax cross-entropy over all items, or sampled softmax.",
          choices=("softmax", "sampled")),
    Param("negatives", int, 256, help="Uniformly drawn negative items per step for the sampled loss.", minimum=1,
          maximum=1 << 20),
)  # fmt: skip

HEADS = Param("heads", int, 2, help="Attention heads per layer (must divide embedding_size).", minimum=1, maximum=64)


def check_heads(hparams: dict[str, Any]) -> None:
    if hparams["embedding_size"] % hparams["heads"]:
        raise HyperparameterError({"heads": f"must divide embedding_size ({hparams['embedding_size']})"})
