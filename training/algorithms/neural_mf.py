"""A neural rating model: user and item embeddings and biases, and a small MLP on the two embeddings
concatenated (the MLP part of He et al., "Neural Collaborative Filtering", WWW 2017, regressing the rating
with the squared error instead of classifying interactions)."""

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from training.algorithms.base import EarlyStopping, ProgressCallback, optimizer_pass
from training.algorithms.params import Param, early_stopping_patience, log_range
from training.algorithms.ratings import RatedPairs, RatingRecommender, rating_model_description
from training.algorithms.registry import register
from training.interactions import ratings_clipped

# (user, item) pairs whose hidden layer is computed at once when scoring every item.
SCORE_BLOCK_PAIRS = 1 << 20


class _Network(nn.Module):
    """``μ + b_u + b_i + MLP([e_u; e_i])`` for ``(b,)`` user and item indexes; μ is added by the caller."""

    def __init__(self, n_users: int, n_items: int, embedding_size: int, hidden_size: int) -> None:
        super().__init__()
        self.user_embeddings = nn.Embedding(n_users, embedding_size)
        self.item_embeddings = nn.Embedding(n_items, embedding_size)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)
        self.hidden = nn.Linear(2 * embedding_size, hidden_size)
        self.output = nn.Linear(hidden_size, 1)
        for table in (self.user_embeddings, self.item_embeddings):
            nn.init.normal_(table.weight, 0.0, 0.1)
        for table in (self.user_bias, self.item_bias):
            nn.init.zeros_(table.weight)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        pair = torch.cat([self.user_embeddings(users), self.item_embeddings(items)], dim=1)
        interaction = self.output(torch.relu(self.hidden(pair)))[:, 0]
        return self.user_bias(users)[:, 0] + self.item_bias(items)[:, 0] + interaction

    def grid(self, users: torch.Tensor) -> torch.Tensor:
        """Every item for each of ``users`` ``(b,)``: ``(b, n_items)``, the hidden layer split by its two inputs."""
        size = self.user_embeddings.embedding_dim
        user_part = self.user_embeddings(users) @ self.hidden.weight[:, :size].T + self.hidden.bias
        item_part = self.item_embeddings.weight @ self.hidden.weight[:, size:].T
        hidden = torch.relu(user_part[:, None, :] + item_part[None, :, :])
        interaction = (hidden @ self.output.weight[0]) + self.output.bias
        return self.user_bias(users) + self.item_bias.weight[:, 0] + interaction


@register
class NeuralMF(RatingRecommender):
    name = "neural_mf"
    label = "Neural MF (ratings)"
    family = "baseline"
    description = rating_model_description(
        interaction="a one-hidden-layer MLP on the user's and the item's embeddings",
        fitting="trained on the squared error with Adam",
    )
    params = (
        log_range("embedding_size", int, 32, "Dimensions of user and item embeddings.", (1, 512), (8, 128)),
        log_range("hidden_size", int, 64, "Units of the MLP's hidden layer.", (1, 1024), (16, 256)),
        log_range("learning_rate", float, 1e-2, "Adam step size.", (1e-6, 1.0), (1e-4, 3e-2)),
        log_range(
            "regularization",
            float,
            0.05,
            "L2 penalty on the embeddings and biases in each batch, per pair.",
            (0.0, 10.0),
            (1e-5, 1e-1),
        ),
        Param("epochs", int, 30, help="Most passes over the rated pairs.", minimum=1, maximum=1000),
        Param("batch_size", int, 4096, help="Rated pairs per step.", minimum=1, maximum=1 << 20),
        early_stopping_patience(default=3, maximum=100, metric="RMSE"),
    )

    def fit_ratings(self, pairs: RatedPairs, stopper: EarlyStopping, progress: ProgressCallback) -> None:
        self.network = self._new_network()
        tensors = [torch.from_numpy(array).to(self.device) for array in pairs]
        optimizer = torch.optim.Adam(self.network.parameters(), lr=self.hparams["learning_rate"])
        generator = self.seeded_generator()
        stopper.run(self.hparams["epochs"], lambda: self._train_epoch(tensors, optimizer, generator), progress)

    def _new_network(self) -> _Network:
        """A freshly initialised network, the same for the same seed."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            network = _Network(self.n_users, self.n_items, self.hparams["embedding_size"], self.hparams["hidden_size"])
        return network.to(self.device)

    def _train_epoch(
        self, pairs: list[torch.Tensor], optimizer: torch.optim.Optimizer, generator: torch.Generator
    ) -> float:
        """One shuffled pass over the (user, item, centred rating) pairs; returns the mean batch loss."""
        users, items, centred = pairs
        order = torch.randperm(len(users), generator=generator, device=self.device)
        self.network.train()
        batches = order.split(self.hparams["batch_size"])
        losses = (self._loss(users[batch], items[batch], centred[batch]) for batch in batches)
        return optimizer_pass(optimizer, losses, self.device)

    def _loss(self, users: torch.Tensor, items: torch.Tensor, centred: torch.Tensor) -> torch.Tensor:
        """Mean squared error on ``(b,)`` pairs plus L2 on the embeddings and biases they use."""
        network = self.network
        loss = (network(users, items) - centred).square().mean()
        if self.hparams["regularization"]:
            used = (
                network.user_embeddings(users),
                network.item_embeddings(items),
                network.user_bias(users),
                network.item_bias(items),
            )
            loss = loss + self.hparams["regularization"] * sum(t.square().sum() for t in used) / len(users)
        return loss

    @torch.no_grad()
    def predict_ratings(self, users: Sequence[int] | np.ndarray, items: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Predicted ratings of the pairs, clipped to the training ratings' range: float32 ``(n,)``."""
        user_rows = self.users_tensor(users)
        item_rows = torch.as_tensor(np.asarray(items, dtype=np.int64), device=self.device)
        if item_rows.shape != user_rows.shape:
            raise ValueError("users and items must be 1-D and of the same length")
        if len(item_rows) and (int(item_rows.min()) < 0 or int(item_rows.max()) >= self.n_items):
            raise ValueError(f"item index out of range 0..{self.n_items - 1}")
        self.network.eval()
        return ratings_clipped(self.network(user_rows, item_rows), self.rating_range).cpu()

    @torch.no_grad()
    def score(self, users: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Every item's predicted rating: float32 ``(len(users), n_items)``."""
        rows = self.users_tensor(users)
        self.network.eval()
        block = max(1, SCORE_BLOCK_PAIRS // max(self.n_items, 1))
        scores = [
            ratings_clipped(self.network.grid(rows[start : start + block]), self.rating_range)
            for start in range(0, len(rows), block)
        ]
        return torch.cat(scores).cpu() if scores else torch.zeros(0, self.n_items)

    def item_vectors(self) -> torch.Tensor:
        return self.network.item_embeddings.weight.detach()

    def user_row_tensors(self) -> tuple[str, ...]:
        return ("user_embeddings.weight", "user_bias.weight")

    def state_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {name: tensor.detach() for name, tensor in self.network.state_dict().items()}
        return tensors | {"rating_range": self.rating_range}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        tensors = dict(tensors)
        self.rating_range = tensors.pop("rating_range").float().to(self.device)
        if not hasattr(self, "network"):
            self.network = self._new_network()
        self.network.load_state_dict({name: tensor.float() for name, tensor in tensors.items()})
