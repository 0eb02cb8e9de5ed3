"""The recommender the sequential models share: its fit loop, and its scoring, state and transfer methods (whose
work is in :mod:`.scoring`, :mod:`.saved_state` and :mod:`.transfer`).

Scoring reads each user's last ``max_length`` training items, kept as a state tensor (``histories``), so a saved and
reloaded model scores identically.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.algorithms.base import EarlyStopping, ProgressCallback, Recommender, no_progress
from training.algorithms.sequential.content_modes import BatchItems, FitInputs, content_mode
from training.algorithms.sequential.item_embeddings import ItemEmbedding
from training.algorithms.sequential.losses import VERY_LOW_LOGIT, sampled_softmax_loss
from training.algorithms.sequential.network import SequenceNetwork
from training.algorithms.sequential.saved_state import (
    network_for_state,
    network_state,
    saved_histories,
    saved_tensors,
    shapes_differ,
)
from training.algorithms.sequential.scoring import (
    HistoryScorer,
    StateScorer,
    latest_histories,
    new_item_output,
    score_tokens,
)
from training.algorithms.sequential.transfer import checked_item_map, network_from_parent, trainable_parameters
from training.algorithms.sequential.windows import UserSequences, Windows, histories_to_tokens, training_windows
from training.interactions import HeldOut, InteractionData

# A batch of training windows → its mean loss and the number of positions it trained.
BatchLoss = Callable[[Windows], tuple[torch.Tensor, int]]


class SequentialRecommender(Recommender):
    """Fit loop, scoring, state and transfer shared by the sequential models.

    Subclasses define :meth:`_build_network`, ``encoder_class`` and ``architecture_params`` (the
    hyperparameters that shape the network: a fine-tuned run takes them from its parent, and its
    training hyperparameters are its own).
    """

    family = "sequential"
    supports_initialize_from = True
    architecture_params: ClassVar[tuple[str, ...]] = ()
    encoder_class: ClassVar[type[nn.Module]]
    # Windows overlap by half: each trained position reads at least max_length / 2 earlier items.
    window_overlap: ClassVar[float] = 0.5

    memory_hint = "lower batch_size or max_length, or set loss to sampled"

    def memory_needed(self, n_users: int, n_items: int) -> int | None:
        """Under the full softmax, a batch's logits over every item at each trained position, with their softmax
        and gradients: about 10 bytes × batch_size × max_length × items (SASRec measured 9.0 to 9.6); the sampled
        loss stays small."""
        if self.hparams.get("loss", "softmax") != "softmax":
            return None
        return 10 * self.hparams["batch_size"] * self.hparams["max_length"] * (n_items + 1)

    def __init__(self, params: Any = None, *, device: str | torch.device = "cpu", seed: int = 0) -> None:
        super().__init__(params, device=device, seed=seed)
        self._check_architecture(self.hparams)
        self.content = content_mode(self.hparams)
        self.network: SequenceNetwork | None = None
        self.histories = torch.zeros(0, self.hparams["max_length"], dtype=torch.long, device=self.device)
        # With a content prior: (n_users, r), the content of each user's training items before ``histories``.
        self.history_offsets: torch.Tensor | None = None
        self.from_parent = False
        self.uses_item_features = self.content.uses_item_features
        self._compiled_hidden: Callable[..., torch.Tensor] | None = None
        self._items_by_event = torch.zeros(0, dtype=torch.long)
        # With content side or prior: 0 for the items with training events, VERY_LOW_LOGIT for those without.
        self._unseen_logits: torch.Tensor | None = None
        # With a content prior, while training: (n_users,) int64, each user's cross-fitting fold.
        self._user_folds: torch.Tensor | None = None

    def _check_architecture(self, hparams: dict[str, Any]) -> None:
        """Checks across hyperparameters; raise :class:`HyperparameterError`."""

    def _build_network(self, n_items: int, feature_size: int) -> SequenceNetwork:
        raise NotImplementedError

    def _item_embedding(self, n_items: int, size: int, feature_size: int) -> ItemEmbedding:
        """The item vectors for :meth:`_build_network`, with side features of ``feature_size`` (0: none)."""
        return ItemEmbedding(n_items, size, side_features=feature_size, side_rank=self.hparams.get("content_rank", 0))

    # -- fitting

    def fit(
        self, data: InteractionData, progress: ProgressCallback = no_progress, *, validation: HeldOut | None = None
    ) -> None:
        """Train on every prefix position of each user's sequence; early-stop on validation NDCG@10."""
        features = self.content.features(data, self.device)
        with self._seeded():
            self._prepare(data, features)
            sequences = UserSequences.from_data(data)
            self._remember_histories(data, sequences)
            self._before_training(data)
            self._train(self._windows(sequences), self._early_stopping(data, validation), progress, self._batch_loss)
        self._finish_training()

    def _remember_histories(self, data: InteractionData, sequences: UserSequences) -> None:
        """Keep what scoring reads (each user's latest tokens, and their earlier content with a prior) and each
        event's item, which the training targets read."""
        self.histories, self.history_offsets = latest_histories(
            sequences, self._network, self.hparams["max_length"], self.device
        )
        self._items_by_event = torch.from_numpy(data.items.astype(np.int64)).to(self.device)

    def _finish_training(self) -> None:
        self._network.eval()
        self._user_folds = None  # the fold maps are for training only: scoring reads the ridge fitted on everyone
        if self._network.prior is not None:
            self._network.prior.fold_maps = None

    def _train(self, windows: Windows, stopper: EarlyStopping, progress: ProgressCallback, loss: BatchLoss) -> None:
        """Epochs over ``windows``, each batch's ``loss`` minimised, until ``stopper`` says so; keeps its best
        epoch's weights."""
        optimizer = torch.optim.AdamW(
            self._trainable_parameters(), lr=self.hparams["learning_rate"], weight_decay=self.hparams["weight_decay"]
        )
        epochs = self.hparams["epochs"]
        schedule = None
        if self._learning_rate_schedule() == "cosine":
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        for epoch in range(1, epochs + 1):
            mean_loss = self._train_epoch(windows, optimizer, loss)
            if schedule is not None:
                schedule.step()
            stopper.report(progress, phase="train", step=epoch, total=epochs, loss=mean_loss)
            if stopper.should_stop:
                break
        stopper.restore_best()

    def _learning_rate_schedule(self) -> str:
        return self.hparams["learning_rate_schedule"]

    def _early_stopping(self, data: InteractionData, validation: HeldOut | None) -> EarlyStopping:
        """What picks the epoch :meth:`fit` keeps, and stops it: validation NDCG@10."""
        return EarlyStopping(self, data, validation, patience=self.hparams["early_stopping_patience"])

    def _prepare(self, data: InteractionData, features: torch.Tensor | None) -> None:
        """Build the network (or check the one a parent gave) and attach the content features."""
        if self.from_parent:
            if self.n_items != data.n_items:
                raise ValueError(f"initialize_from mapped {self.n_items} items, but the data has {data.n_items}")
        else:
            self.network = self._build_network(data.n_items, self.content.side_size(features)).to(self.device)
            self.content.start(self.network, features)
        self.n_users, self.n_items = data.n_users, data.n_items
        self._compiled_hidden = None
        self._unseen_logits = None
        self._user_folds = self.content.attach(self._network, FitInputs(features, data, self._sized_item_embedding))
        if self.content.content_ranks_unseen_items and not self.from_parent:
            self._forget_unseen_items(data)  # a fine-tuned run keeps what its parent learned of every item

    def _sized_item_embedding(self, feature_size: int) -> ItemEmbedding:
        return self._item_embedding(self.n_items, self.hparams["embedding_size"], feature_size)

    def _forget_unseen_items(self, data: InteractionData) -> None:
        """Items without training events are their content alone: their own weights are zero, and they
        are left out of the training softmax (being nobody's next item says nothing of them), so they stay zero
        and content decides where they rank when scored."""
        seen = torch.from_numpy(np.bincount(data.items, minlength=data.n_items) > 0).to(self.device)
        self._network.forget_items(~seen)
        if not bool(seen.all()):
            self._unseen_logits = torch.where(seen, 0.0, VERY_LOW_LOGIT)

    def _before_training(self, data: InteractionData) -> None:
        """Hook for subclasses (STAR's domains), called inside the seeded block before the windows are cut."""

    def _window_stride(self) -> int:
        """How far apart training windows start (they overlap by ``window_overlap``)."""
        return max(1, round(self.hparams["max_length"] * (1.0 - self.window_overlap)))

    def _windows(self, sequences: UserSequences) -> Windows:
        inputs, targets, starts = training_windows(sequences, self.hparams["max_length"], self._window_stride())
        prior = self._network.prior
        offsets = folds = None
        if prior is not None:
            offsets = sequences.sums_before(prior.items[1:], starts)
            if self._user_folds is not None:
                folds = self._user_folds[torch.from_numpy(sequences.users_at(starts)).to(self.device)]
        inputs_tensor, targets_tensor = (torch.from_numpy(array).to(self.device) for array in (inputs, targets))
        return Windows(inputs_tensor, targets_tensor, offsets, folds)

    def _trainable_parameters(self) -> list[nn.Parameter]:
        top_only = self.from_parent and self.hparams.get("finetune", "all") == "top"
        return trainable_parameters(self._network, top_only=top_only)

    def _train_epoch(self, windows: Windows, optimizer: torch.optim.Optimizer, batch_loss: BatchLoss) -> float:
        """One shuffled pass over the windows; returns the mean loss per trained position."""
        self._network.train()
        order = torch.randperm(len(windows), device=self.device)
        total, count = torch.zeros((), device=self.device), 0
        for batch in order.split(self.hparams["batch_size"]):
            with self._autocast():
                loss, positions = batch_loss(windows.rows(batch))
            if not positions:
                continue
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, count = total + loss.detach().float() * positions, count + positions
        return float(total) / max(count, 1)

    def _training_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` ``(P, n_items)`` with the items that have no training events left out of the softmax."""
        return logits if self._unseen_logits is None else logits + self._unseen_logits

    def _batch_loss(self, batch: Windows) -> tuple[torch.Tensor, int]:
        """Mean next-item loss over the trained positions of a batch of ``(b, L)`` windows, and their number."""
        trained = batch.target_events >= 0
        items = self._item_tables()
        hidden = self._hidden(batch, items.table)[trained]
        targets = self._items_by_event[batch.target_events[trained]]
        return self._next_item_loss(hidden, targets, items), len(targets)

    def _item_tables(self) -> BatchItems:
        """For one training batch: the item vectors as the content mode gives them (:class:`BatchItems`)."""
        return self.content.batch_items(self._network, self.n_items)

    def _next_item_loss(
        self, hidden: torch.Tensor, targets: torch.Tensor, items: BatchItems, domain: int | None = None
    ) -> torch.Tensor:
        """Cross-entropy of ``targets`` ``(P,)`` (item indexes) given states ``(P, d)``, plus the content term."""
        return self._item_loss(hidden, targets, items.table, domain, items.kept) + self._content_only_loss(
            hidden, targets, items.content, domain
        )

    def _content_only_loss(
        self, hidden: torch.Tensor, targets: torch.Tensor, content: torch.Tensor | None, domain: int | None = None
    ) -> torch.Tensor | float:
        """``content_loss`` × the cross-entropy of ``targets`` with every item scored by its content alone
        (``content``, from :meth:`_item_tables`), as items without events are scored; 0 when ``content`` is
        ``None``. Every training loss adds it."""
        if content is None:
            return 0.0
        return self.hparams["content_loss"] * self._item_loss(hidden, targets, content, domain)

    def _item_loss(
        self,
        hidden: torch.Tensor,
        targets: torch.Tensor,
        table: torch.Tensor,
        domain: int | None,
        kept: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Cross-entropy of ``targets`` with the items' vectors ``table`` ``(n_items + 1, d)`` (``kept``: see
        :class:`BatchItems`)."""
        if self.hparams.get("loss", "softmax") == "softmax":
            logits = self._network.logits(hidden, table, domain, kept)
            return F.cross_entropy(self._training_logits(logits), targets)
        item_logits = self._network.items.bias()
        if item_logits is not None and kept is not None:
            item_logits = item_logits * kept
        if self._unseen_logits is not None:
            item_logits = self._unseen_logits if item_logits is None else item_logits + self._unseen_logits
        output = self._network.output_table(table)[1:]
        return sampled_softmax_loss(hidden, targets, output, self.hparams["negatives"], item_logits)

    def _hidden(self, batch: Windows, table: torch.Tensor, domain: int | None = None) -> torch.Tensor:
        """The network's states ``(b, L, d)`` for a batch of training windows (their content offsets and folds
        included), through ``torch.compile`` when asked for on CUDA."""
        hidden = self._network.hidden
        if self.hparams["compile"] and self.device.type == "cuda":
            if self._compiled_hidden is None:
                self._compiled_hidden = torch.compile(hidden, dynamic=True)
            hidden = self._compiled_hidden
        return hidden(batch.inputs, table, domain, batch.offsets, batch.folds)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.hparams["mixed_precision"] and self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -- scoring

    @property
    def _network(self) -> SequenceNetwork:
        if self.network is None:
            raise RuntimeError(f"{self.name} is not fitted")
        return self.network

    @torch.no_grad()
    def score(self, users: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Every item's score after each user's last ``max_length`` training items: ``(len(users), n_items)``
        (a content prior reads all of them)."""
        return self._score_users(self.users_tensor(users), self.histories, self.history_offsets)

    def _score_users(
        self, users: torch.Tensor, histories: torch.Tensor, offsets: torch.Tensor | None, **kwargs: Any
    ) -> torch.Tensor:
        """Scores of ``users`` after their rows of ``histories`` ``(n_users, max_length)`` (and ``offsets``)."""
        return self._score_tokens(histories[users], offsets=None if offsets is None else offsets[users])

    def after_history(self, history: InteractionData) -> HistoryScorer:
        """A scorer reading each user's events in ``history`` (same indexes as training, in time order: e.g. the
        training plus the validation events) where :meth:`score` reads the training events alone."""
        return HistoryScorer.after(self, history)

    @torch.no_grad()
    def score_sequences(self, item_index_lists: Sequence[Sequence[int]]) -> torch.Tensor:
        """Every item's score after each given history (item indexes, oldest first): ``(n, n_items)`` float32.

        Only the last ``max_length`` items of a history are read (a content prior reads all of them); an empty
        history is allowed.
        """
        return self._score_tokens(*self._sequence_inputs(item_index_lists))

    @torch.no_grad()
    def score_new_items(
        self, item_index_lists: Sequence[Sequence[int]], features: torch.Tensor, **kwargs: Any
    ) -> torch.Tensor | None:
        """Scores ``(n, n_new)`` of items added after training, from their raw content ``features`` ``(n_new, f)``,
        after each history as :meth:`score_sequences` reads it (``kwargs``: STAR's ``domain``): what the model
        gives an item without training events of that content (:meth:`SequenceNetwork.new_item_vectors`).
        ``None`` for a model that reads no content of its items (content ``none`` or ``init``)."""
        output = new_item_output(self._network, features, self.device)
        if output is None:
            return None
        return self._score_tokens(*self._sequence_inputs(item_index_lists, **kwargs), output=output)

    def _sequence_inputs(
        self, item_index_lists: Sequence[Sequence[int]], **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """What :meth:`_score_tokens` reads for given histories: their tokens, domains (``None``) and offsets."""
        tokens = histories_to_tokens(item_index_lists, self.n_items, self.hparams["max_length"])
        return torch.from_numpy(tokens).to(self.device), None, self._sequence_offsets(item_index_lists)

    def _sequence_offsets(self, item_index_lists: Sequence[Sequence[int]]) -> torch.Tensor | None:
        prior = self._network.prior
        return None if prior is None else prior.offsets(item_index_lists, self.hparams["max_length"])

    def _score_tokens(
        self,
        tokens: torch.Tensor,
        domains: torch.Tensor | None = None,
        offsets: torch.Tensor | None = None,
        output: tuple[StateScorer, int] | None = None,
    ) -> torch.Tensor:
        """Scores after right-padded ``tokens`` ``(n, L)``; row ``r`` under domain ``domains[r]`` if given, its
        content prior also reading ``offsets[r]`` (:meth:`ContentPrior.queries`). ``output``: what scores the last
        states and how many scores it gives each (default: every item, :meth:`SequenceNetwork.logits`)."""
        network = self._network
        output = output or (network.logits, self.n_items)
        autocast = self._autocast()
        return score_tokens(
            network, tokens, output=output, autocast=autocast, device=self.device, domains=domains, offsets=offsets
        )

    @torch.no_grad()
    def position_scores(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Scores at chosen positions of token windows, in this model's item space.

        ``tokens`` is ``(b, L)`` int64 right-padded tokens (``L`` at most ``max_length``) and
        ``positions`` ``(b, L)`` bool; returns ``(positions.sum(), n_items)`` float32. Position ``j``
        is scored after tokens ``0..j``: for a window's last item that is exactly
        :meth:`score_sequences` of the window, and a distillation teacher scores every prefix a
        student trains on in one pass. A content prior reads the windows' items only, not what came before them.
        """
        return self.state_scores(self.position_states(tokens, positions))

    @torch.no_grad()
    def position_states(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """The states ``(positions.sum(), d)`` that :meth:`position_scores` scores (``d + r`` with a content prior:
        they are scored against :meth:`item_vectors`)."""
        network = self._network
        network.eval()
        if tokens.shape[1] > self.hparams["max_length"]:
            raise ValueError(f"windows of {tokens.shape[1]} are longer than max_length {self.hparams['max_length']}")
        with self._autocast():
            return network.hidden(tokens, network.items.weight())[positions]

    @torch.no_grad()
    def state_scores(self, states: torch.Tensor) -> torch.Tensor:
        """Every item's score ``(P, n_items)`` float32 for states ``(P, d)`` of :meth:`position_states`."""
        network = self._network
        network.eval()
        with self._autocast():
            return network.logits(states, network.scoring_table()).float()

    def item_vectors(self) -> torch.Tensor:
        """The item vectors states are scored against ``(n_items, d)`` (content projection included; with a content
        prior, ``(n_items, d + r)``: the gain-scaled content beside each embedding)."""
        with torch.no_grad():
            return self._network.output_table(self._network.scoring_table())[1:]

    # -- state

    def user_row_tensors(self) -> tuple[str, ...]:
        return ("histories",) if self.history_offsets is None else ("histories", "history_offsets")

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return saved_tensors(self._network, self.histories, self.history_offsets)

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        state = network_state(tensors)
        if self.network is None or shapes_differ(self.network, state):
            self.network = network_for_state(state, self.hparams, self._build_network, self.device)
        self._network.load_state_dict(state)
        self._network.eval()
        self.histories, self.history_offsets = saved_histories(tensors, self.device)

    def parameter_count(self) -> int:
        """Learned numbers only (a content prior's closed-form map counts): the stored histories and content
        features are inputs, not parameters."""
        network = self._network
        learned = sum(weight.numel() for weight in network.parameters())
        return learned + (network.prior.query_map.numel() if network.prior is not None else 0)

    # -- transfer

    def initialize_from(self, parent: Recommender, item_map: np.ndarray) -> None:
        """Start from ``parent``'s weights to fine-tune; call before :meth:`fit`.

        The architecture hyperparameters (``architecture_params``) are taken from the parent; the
        training ones (learning rate, epochs, dropout, ``finetune``…) stay this run's. Every parent
        tensor with the same name and shape is copied (encoder layers, positions, normalisations,
        the content projection); item-indexed tensors are gathered through ``item_map``
        (``(n_items,)`` int64: the parent's index of each item, or -1), and items the parent does not
        know keep a fresh initialisation.
        """
        parent_network = self._check_parent(parent)
        item_map = checked_item_map(item_map, parent.n_items)
        adopted = {name: parent.hparams[name] for name in self.architecture_params if name in parent.hparams}
        self._check_architecture(self.hparams | adopted)
        self.hparams.update(adopted)
        with self._seeded():
            network = network_from_parent(parent_network, item_map, self._build_network, self.content, self.device)
        self.network, self.n_items, self.from_parent = network, len(item_map), True

    def _check_parent(self, parent: Recommender) -> SequenceNetwork:
        if not isinstance(parent, SequentialRecommender) or parent.encoder_class is not self.encoder_class:
            raise ValueError(f"{self.name} cannot start from a {parent.name} run")
        if parent.network is None:
            raise ValueError(f"the parent {parent.name} model is not fitted")
        return parent.network

    # -- helpers

    @contextlib.contextmanager
    def _seeded(self) -> Iterator[None]:
        """Run with torch's generators seeded from ``seed``, and put back as they were afterwards."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            yield
