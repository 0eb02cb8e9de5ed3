"""SASRec: next-item prediction with causal self-attention (Kang and McAuley, ICDM 2018)."""

from typing import Any

from training.algorithms.registry import register
from training.algorithms.sequential import (
    HEADS,
    LOSS_PARAMS,
    SequenceNetwork,
    SequentialRecommender,
    TransformerEncoder,
    check_heads,
    sequential_params,
)


@register
class SASRec(SequentialRecommender):
    name = "sasrec"
    label = "SASRec (Transformer)"
    description = (
        "Reads each user's last max_length items with causal self-attention and predicts the next one; trained on "
        "every position of the training sequences (full or sampled softmax). Can add item content features, and "
        "fine-tune from a parent run."
    )
    params = sequential_params(architecture=(HEADS,), extra=LOSS_PARAMS)
    architecture_params = ("embedding_size", "layers", "heads", "max_length")
    encoder_class = TransformerEncoder

    def _check_architecture(self, hparams: dict[str, Any]) -> None:
        check_heads(hparams)

    def _build_network(self, n_items: int, feature_size: int) -> SequenceNetwork:
        size = self.hparams["embedding_size"]
        encoder = TransformerEncoder(
            size, self.hparams["layers"], self.hparams["heads"], self.hparams["dropout"], self.hparams["max_length"]
        )
        return SequenceNetwork(self._item_embedding(n_items, size, feature_size), encoder)
