"""Shared pieces of the sequential recommenders: SASRec, GRU4Rec, STAR and the distilled student.

- :mod:`.windows`: each user's events in time order, as tokens, cut into training windows;
- :mod:`.layers`: the Transformer and GRU encoders and STAR's domain layers;
- :mod:`.item_embeddings`: item vectors, with content side features or of mixed dimensions;
- :mod:`.prior`: the content prior (a content ridge every score adds);
- :mod:`.content_modes`: what each ``content`` setting adds, one class per mode;
- :mod:`.network`: :class:`SequenceNetwork`, item embeddings and an encoder with tied output weights;
- :mod:`.parameters`: the hyperparameter schema the sequential models share;
- :mod:`.losses`: the next-item losses;
- :mod:`.recommender`: :class:`SequentialRecommender`, the fit loop, scoring and state they share;
- :mod:`.scoring`: scoring token histories in chunks, what scoring reads of each user, new items and
  :class:`HistoryScorer`;
- :mod:`.saved_state`: the tensors a model is saved as, and rebuilding its network from them;
- :mod:`.transfer`: fine-tuning from a parent run's weights.
"""

from training.algorithms.sequential.content_modes import (
    CONTENT_MODE_CLASSES,
    BatchItems,
    ContentMode,
    InitContent,
    NoContent,
    PriorContent,
    SideContent,
    content_mode,
)
from training.algorithms.sequential.item_embeddings import ItemEmbedding, MixedItemEmbedding
from training.algorithms.sequential.layers import (
    INIT_STD,
    DomainLayerNorm,
    DomainLinear,
    GRUEncoder,
    TransformerBlock,
    TransformerEncoder,
)
from training.algorithms.sequential.losses import VERY_LOW_LOGIT, sampled_softmax_loss
from training.algorithms.sequential.network import SequenceNetwork
from training.algorithms.sequential.parameters import (
    CONTENT_MODES,
    CUDA_OPTIONS,
    FINETUNE_MODES,
    HEADS,
    LEARNING_RATE_SCHEDULES,
    LOSS_PARAMS,
    TRAINING_PASSES,
    check_heads,
    sequential_params,
)
from training.algorithms.sequential.prior import ContentPrior
from training.algorithms.sequential.recommender import SequentialRecommender
from training.algorithms.sequential.scoring import SCORE_CHUNK, HistoryScorer
from training.algorithms.sequential.transfer import checked_item_map
from training.algorithms.sequential.windows import (
    PADDING,
    UserSequences,
    Windows,
    histories_to_tokens,
    last_positions,
    training_windows,
)

__all__ = [
    "CONTENT_MODES",
    "CONTENT_MODE_CLASSES",
    "CUDA_OPTIONS",
    "FINETUNE_MODES",
    "HEADS",
    "INIT_STD",
    "LEARNING_RATE_SCHEDULES",
    "LOSS_PARAMS",
    "PADDING",
    "SCORE_CHUNK",
    "TRAINING_PASSES",
    "VERY_LOW_LOGIT",
    "BatchItems",
    "ContentMode",
    "ContentPrior",
    "DomainLayerNorm",
    "DomainLinear",
    "GRUEncoder",
    "HistoryScorer",
    "InitContent",
    "ItemEmbedding",
    "MixedItemEmbedding",
    "NoContent",
    "PriorContent",
    "SequenceNetwork",
    "SequentialRecommender",
    "SideContent",
    "TransformerBlock",
    "TransformerEncoder",
    "UserSequences",
    "Windows",
    "check_heads",
    "checked_item_map",
    "content_mode",
    "histories_to_tokens",
    "last_positions",
    "sampled_softmax_loss",
    "sequential_params",
    "training_windows",
]
