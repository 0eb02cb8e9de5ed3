"""GRU4Rec: next-item prediction with a recurrent network (Hidasi et al., ICLR 2016)."""

from training.algorithms.params import Param
from training.algorithms.registry import register
from training.algorithms.sequential import (
    LOSS_PARAMS,
    GRUEncoder,
    SequenceNetwork,
    SequentialRecommender,
    sequential_params,
)

HIDDEN_SIZE = Param(
    "hidden_size", int, 128, help="Units of each GRU layer.", minimum=4, maximum=4096, search=(32, 512), log=True
)


@register
class GRU4Rec(SequentialRecommender):
    name = "gru4rec"
    label = "GRU4Rec (RNN)"
    description = (
        "Reads each user's last max_length items with a GRU and predicts the next one; trained on every position of "
        "the training sequences (full or sampled softmax). Can add item content features, and fine-tune from a "
        "parent run."
    )
    params = sequential_params(layers=1, architecture=(HIDDEN_SIZE,), extra=LOSS_PARAMS)
    architecture_params = ("embedding_size", "hidden_size", "layers", "max_length")
    encoder_class = GRUEncoder

    def _build_network(self, n_items: int, feature_size: int) -> SequenceNetwork:
        size = self.hparams["embedding_size"]
        encoder = GRUEncoder(size, self.hparams["hidden_size"], self.hparams["layers"], self.hparams["dropout"])
        return SequenceNetwork(self._item_embedding(n_items, size, feature_size), encoder)
