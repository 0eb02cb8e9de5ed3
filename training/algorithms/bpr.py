"""Matrix factorisation trained with Bayesian Personalised Ranking (Rendle et al., UAI 2009)."""

import numpy as np
import torch
import torch.nn.functional as F

from training.algorithms.base import DotProductRecommender, EarlyStopping, ProgressCallback, no_progress, optimizer_pass
from training.algorithms.params import Param, early_stopping_patience, log_range
from training.algorithms.registry import register
from training.interactions import HeldOut, InteractionData


@register
class BPR(DotProductRecommender):
    name = "bpr"
    label = "BPR-MF"
    family = "baseline"
    description = (
        "Matrix factorisation learning that each user prefers their items to uniformly sampled other items "
        "(pairwise BPR loss, Adam). Early-stops on validation NDCG@10 when a validation set is given."
    )
    params = (
        log_range("embedding_size", int, 64, "Dimensions of user and item vectors.", (1, 1024), (16, 256)),
        log_range("learning_rate", float, 1e-3, "Adam step size.", (1e-6, 1.0), (1e-4, 1e-1)),
        log_range(
            "regularization", float, 0.0, "L2 penalty on the embeddings in each batch.", (0.0, 10.0), (1e-7, 1e-1)
        ),
        Param("epochs", int, 200, help="Most passes over the training pairs.", minimum=1, maximum=2000),
        Param("batch_size", int, 2048, help="Positive pairs per step.", minimum=1, maximum=1 << 20),
        Param("negatives", int, 1, help="Sampled negative items per positive pair.", minimum=1, maximum=100),
        early_stopping_patience(default=10, maximum=1000),
    )
    user_tensor, item_tensor = "user_embeddings", "item_embeddings"

    def fit(
        self, data: InteractionData, progress: ProgressCallback = no_progress, *, validation: HeldOut | None = None
    ) -> None:
        self.n_users, self.n_items = data.n_users, data.n_items
        generator = self.seeded_generator()
        self.user_embeddings = self._initial_embeddings(self.n_users, generator)
        self.item_embeddings = self._initial_embeddings(self.n_items, generator)
        pairs = _PositivePairs(data, self.device)
        optimizer = torch.optim.Adam([self.user_embeddings, self.item_embeddings], lr=self.hparams["learning_rate"])
        stopper = EarlyStopping(self, data, validation, patience=self.hparams["early_stopping_patience"])
        stopper.run(self.hparams["epochs"], lambda: self._train_epoch(pairs, optimizer, generator), progress)

    def _initial_embeddings(self, rows: int, generator: torch.Generator) -> torch.Tensor:
        """Xavier-normal ``(rows, embedding_size)`` parameter, as RecBole initialises its embeddings."""
        size = self.hparams["embedding_size"]
        weights = torch.empty(rows, size, device=self.device)
        weights.normal_(0.0, (2.0 / (rows + size)) ** 0.5, generator=generator)
        return weights.requires_grad_()

    def _train_epoch(
        self, pairs: "_PositivePairs", optimizer: torch.optim.Optimizer, generator: torch.Generator
    ) -> float:
        """One shuffled pass over the positive pairs; returns the mean batch loss."""
        order = torch.randperm(pairs.n_pairs, generator=generator, device=self.device)
        losses = (self._batch_loss(pairs, batch, generator) for batch in order.split(self.hparams["batch_size"]))
        return optimizer_pass(optimizer, losses, self.device)

    def _batch_loss(self, pairs: "_PositivePairs", batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The loss of the positive pairs ``batch`` ``(b,)``, each with its sampled negatives."""
        users = pairs.users[batch].repeat_interleave(self.hparams["negatives"])
        positives = pairs.items[batch].repeat_interleave(self.hparams["negatives"])
        negatives = pairs.sample_negatives(users, generator)
        return self._loss(users, positives, negatives)

    def _loss(self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        """Mean ``−log σ(x_u·y_i − x_u·y_j)`` plus L2 on the embeddings involved; all inputs ``(b,)`` int64."""
        user = self.user_embeddings[users]
        positive, negative = self.item_embeddings[positives], self.item_embeddings[negatives]
        margin = (user * (positive - negative)).sum(dim=1)
        # −log σ(m) = softplus(−m); torch's CPU logsigmoid kernel is far slower on small batches.
        loss = F.softplus(-margin).mean()
        if self.hparams["regularization"]:
            penalty = user.square().sum() + positive.square().sum() + negative.square().sum()
            loss = loss + self.hparams["regularization"] * penalty / len(users)
        return loss


class _PositivePairs:
    """The distinct training (user, item) pairs on a device, with exact vectorised negative sampling.

    A negative is drawn uniformly from the items the user has *not* interacted with (RecBole's
    sampler draws the same distribution by rejection): draw ``r`` below the user's number of
    such items, then step past the user's positives that come before the ``r``-th gap. One
    ``searchsorted`` per batch, no rejection loop and no host-device synchronisation.
    """

    def __init__(self, data: InteractionData, device: torch.device) -> None:
        self.n_items = data.n_items
        keys = torch.from_numpy(np.unique(data.users.astype(np.int64) * data.n_items + data.items)).to(device)
        self.users, self.items = keys // data.n_items, keys % data.n_items
        self.n_pairs = len(keys)
        degree = torch.bincount(self.users, minlength=data.n_users)
        self.first_pair = torch.cumsum(degree, 0) - degree  # (n_users,): index of each user's first pair
        self.unseen = (data.n_items - degree).clamp(min=1)  # a user who has every item gets item n_items - 1
        # Positive j of a user (sorted) has items[j] - j unseen items before it; these keys are sorted.
        self.gap_keys = keys - (torch.arange(self.n_pairs, device=device) - self.first_pair[self.users])

    def sample_negatives(self, users: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``(b,)`` int64 items, each drawn uniformly from its user's non-interacted items; ``users`` is ``(b,)``."""
        draws = torch.randint(0, 1 << 62, users.shape, generator=generator, device=users.device)
        rank = draws % self.unseen[users]  # modulo bias below 2⁻⁴⁰ for any real catalogue
        skipped = torch.searchsorted(self.gap_keys, users * self.n_items + rank, right=True) - self.first_pair[users]
        return (rank + skipped).clamp_(max=self.n_items - 1)
