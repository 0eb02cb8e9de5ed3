"""The contract every recommender fulfils.

This package has no Django imports: algorithms can be tested, benchmarked and
run on a GPU machine on their own. Users and items are dense indexes
``0..n_users-1`` and ``0..n_items-1``; the Django side maps external ids.

Validation and early stopping: ``fit`` takes an optional ``validation``
:class:`HeldOut` (each user's held-out items, e.g. from
``training.evaluation.splits``). Iterative models measure NDCG@10 on it after
every epoch (full ranking over all items, the user's training items excluded),
put it in ``EpochReport.validation["ndcg@10"]``, keep a copy of the best
epoch's state tensors and stop after ``early_stopping_patience`` epochs without
improvement, then restore the best state (see :class:`EarlyStopping`), or stop there with the best state
when the progress callback says the time ran out (:class:`BudgetSpent`); models that predict ratings
(``predicts_ratings``) stop on the validation RMSE instead (:meth:`EarlyStopping.for_ratings`).
Closed-form models report the validation NDCG@10 once, after fitting. Without a
validation set, or with an empty one, iterative models run every epoch they are given.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from training.algorithms.params import Param, validate_params
from training.algorithms.registry import get_algorithm
from training.evaluation.ranking import mean_ndcg
from training.evaluation.rating import rating_errors
from training.interactions import HeldOut, InteractionData, csr_rows_clear, csr_rows_dense

ARTIFACT_TENSORS = "model.safetensors"
ARTIFACT_METADATA = "metadata.json"


class TrainingCancelled(Exception):
    """Raised by a progress callback to stop training at the next epoch boundary."""


class BudgetSpent(TrainingCancelled):
    """Raised by a progress callback when the time for training ran out: a loop run by :class:`EarlyStopping`
    ends there and keeps its best epoch so far (a loop that does not know it is cancelled)."""


@dataclass(frozen=True)
class EpochReport:
    """What a training loop tells its caller after each epoch (or phase step)."""

    phase: str
    step: int
    total: int
    loss: float | None = None
    validation: dict[str, float] = field(default_factory=dict)


ProgressCallback = Callable[[EpochReport], None]


def no_progress(report: EpochReport) -> None:
    return None


class Recommender(ABC):
    """Base class: declare ``name``, ``label``, ``family``, ``params``; implement fit and score."""

    name: ClassVar[str]
    label: ClassVar[str]
    family: ClassVar[str]  # "baseline" | "sequential" | "content" | "multi_scenario"
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()

    def __init__(
        self, params: Mapping[str, Any] | None = None, *, device: str | torch.device = "cpu", seed: int = 0
    ) -> None:
        self.hparams = validate_params(self.params, params)
        self.device = torch.device(device)
        self.seed = seed
        self.n_users = 0
        self.n_items = 0
        # After an iterative fit: the epoch (1-based) whose state the model kept; None for a model fitted in one go.
        self.kept_epoch: int | None = None

    @abstractmethod
    def fit(
        self, data: InteractionData, progress: ProgressCallback = no_progress, *, validation: HeldOut | None = None
    ) -> None:
        """Learn from ``data``; call ``progress`` at least once per epoch (it may raise TrainingCancelled).

        ``validation`` (optional) drives early stopping and the reported validation NDCG@10 (module docstring).
        """

    @abstractmethod
    def score(self, users: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Scores of every item for each user: float32 ``(len(users), n_items)`` on the CPU.

        Items the user already has in training are not masked here; ranking code does that.
        """

    @abstractmethod
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Everything needed to score again, as named tensors."""

    @abstractmethod
    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore from :meth:`state_tensors`."""

    def memory_needed(self, n_users: int, n_items: int) -> int | None:
        """About how many bytes :meth:`fit` holds at its peak on data of ``n_users`` and ``n_items``, for a model
        whose peak can outgrow a worker (checked before fitting, :mod:`training.memory`); None where it stays
        small."""
        return None

    # What else lowers the peak of :meth:`memory_needed`, said when a run is too large for its worker.
    memory_hint: ClassVar[str] = "choose a model that grows with the events, such as iALS or item-kNN"

    # A binary training matrix kept for scoring (item-kNN, EASE), as the names of its ``(crow, col)`` state
    # tensors; its rows are users.
    user_matrix_tensors: ClassVar[tuple[str, str] | None] = None

    def user_row_tensors(self) -> tuple[str, ...]:
        """Names of the state tensors with one row per training user (a vector, a history)."""
        return ()

    def forget_users(self, users: Sequence[int] | np.ndarray) -> None:
        """Clear what the model stores of these users (dense indexes), for end users who were deleted: their rows
        of :meth:`user_row_tensors` become zeros (a zero vector, an empty history) and their rows of the training
        matrix empty, so what is left of them is the same for every forgotten user."""
        rows = self.users_tensor(users)
        tensors = dict(self.state_tensors())
        for name in self.user_row_tensors():
            cleared = tensors[name].clone()
            cleared[rows.to(cleared.device)] = 0
            tensors[name] = cleared
        if self.user_matrix_tensors is not None:
            crow, col = self.user_matrix_tensors
            tensors[crow], tensors[col] = csr_rows_clear(tensors[crow], tensors[col], rows)
        self.load_state_tensors(tensors)

    # Whether :meth:`explain` can say which history items made an item score high.
    explainable: ClassVar[bool] = False
    # Whether :meth:`fit` needs ``InteractionData.item_features`` (content models). Not a ClassVar: a model
    # may decide per instance, from its hyperparameters (SASRec's ``content`` mode).
    uses_item_features: bool = False
    # Whether :meth:`initialize_from` can start this model from a parent run's weights (fine-tuning).
    supports_initialize_from: ClassVar[bool] = False
    # Whether :meth:`fit` needs a teacher model attached first (knowledge distillation).
    needs_teacher: ClassVar[bool] = False
    # Whether the algorithm is the choice of a model among trained runs (``auto``), never fitted itself.
    chooses_model: ClassVar[bool] = False

    # Whether :meth:`predict_ratings` predicts the value of a rating (explicit feedback); such a model also ranks,
    # by its predicted ratings.
    predicts_ratings: ClassVar[bool] = False

    def predict_ratings(self, users: Sequence[int] | np.ndarray, items: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Predicted ratings of the pairs ``(users[j], items[j])``: float32 ``(n,)`` on the CPU."""
        raise NotImplementedError(f"{self.name} does not predict ratings")

    def initialize_from(self, parent: Recommender, item_map: np.ndarray) -> None:
        """Start from ``parent``'s weights; call before :meth:`fit`.

        ``item_map`` is ``(n_items,)`` int64: the parent's index of each of this model's items, or -1
        for an item the parent does not know (it starts from a fresh initialisation).
        """
        raise NotImplementedError(f"{self.name} cannot start from a parent run")

    def parameter_count(self) -> int:
        """How many numbers the model holds: by default the total size of its state tensors."""
        return sum(tensor.numel() for tensor in self.state_tensors().values())

    def load_metadata(self, metadata: dict[str, Any]) -> None:
        """Restore what :meth:`metadata` added beyond the base keys; called by :meth:`load`."""
        return None

    def item_vectors(self) -> torch.Tensor | None:
        """Item embeddings ``(n_items, d)`` when the model has them (used for similar items); else None."""
        return None

    def similar_items(self, items: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Similarity of every item to each of ``items``: float32 ``(len(items), n_items)`` on the CPU.

        The default is the cosine of :meth:`item_vectors`; models without item vectors override it or
        cannot answer (``NotImplementedError``).
        """
        vectors = self.item_vectors()
        if vectors is None:
            raise NotImplementedError(f"{self.name} has no notion of item similarity")
        unit = torch.nn.functional.normalize(vectors.detach().float().cpu(), dim=1)
        return unit[torch.as_tensor(np.asarray(items), dtype=torch.long)] @ unit.T

    def explain(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Contribution of each history item to each item's score: ``(len(items), len(history))``.

        Only models whose score is a sum over the history (``explainable``) can answer.
        """
        raise NotImplementedError(f"{self.name} cannot explain its scores item by item")

    def metadata(self) -> dict[str, Any]:
        return {
            "algorithm": self.name,
            "params": self.hparams,
            "seed": self.seed,
            "n_users": self.n_users,
            "n_items": self.n_items,
        }

    def save(self, directory: Path) -> None:
        """Write ``model.safetensors`` and ``metadata.json`` into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {key: value.detach().to("cpu").contiguous() for key, value in self.state_tensors().items()}
        save_file(tensors, str(directory / ARTIFACT_TENSORS))
        (directory / ARTIFACT_METADATA).write_text(json.dumps(self.metadata(), indent=2, sort_keys=True))

    def seeded_generator(self) -> torch.Generator:
        """A generator on the model's device seeded with ``seed``, for the random draws of a fit."""
        return torch.Generator(device=self.device).manual_seed(self.seed)

    def users_tensor(self, users: Sequence[int] | np.ndarray) -> torch.Tensor:
        """``users`` as an int64 tensor on the model's device, checked against ``n_users``."""
        tensor = torch.as_tensor(np.asarray(users, dtype=np.int64), device=self.device)
        if tensor.ndim != 1:
            raise ValueError("users must be a 1-D sequence of user indexes")
        if len(tensor) and (int(tensor.min()) < 0 or int(tensor.max()) >= self.n_users):
            raise ValueError(f"user index out of range 0..{self.n_users - 1}")
        return tensor

    @classmethod
    def load(cls, directory: Path, *, device: str | torch.device = "cpu") -> Recommender:
        """Rebuild a saved model; the class is looked up from the metadata's algorithm name."""
        metadata = json.loads((directory / ARTIFACT_METADATA).read_text())
        algorithm = get_algorithm(metadata["algorithm"])
        if cls is not Recommender and algorithm is not cls:
            raise ValueError(f"artifact holds {metadata['algorithm']!r}, not {cls.name!r}")
        if algorithm.load.__func__ is not Recommender.load.__func__:  # type: ignore[attr-defined]
            return algorithm.load(directory, device=device)  # a model that rebuilds itself its own way (a blend)
        model = algorithm(metadata["params"], device=device, seed=metadata.get("seed", 0))
        model.n_users = int(metadata["n_users"])
        model.n_items = int(metadata["n_items"])
        model.load_state_tensors(load_file(str(directory / ARTIFACT_TENSORS), device=str(model.device)))
        model.load_metadata(metadata)
        return model


class DotProductRecommender(Recommender):
    """A model that scores ``user vector · item vector``: it names the attributes holding its ``(n_users, d)``
    and ``(n_items, d)`` tensors, which are also its saved state under those names."""

    user_tensor: ClassVar[str]
    item_tensor: ClassVar[str]

    @torch.no_grad()
    def score(self, users: Sequence[int] | np.ndarray) -> torch.Tensor:
        """``x_u · y_i`` for every item: float32 ``(len(users), n_items)``."""
        user_vectors = getattr(self, self.user_tensor)
        return (user_vectors[self.users_tensor(users)] @ self.item_vectors().T).cpu()

    def item_vectors(self) -> torch.Tensor:
        return getattr(self, self.item_tensor)

    def user_row_tensors(self) -> tuple[str, ...]:
        return (self.user_tensor,)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name).detach() for name in (self.user_tensor, self.item_tensor)}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        for name in (self.user_tensor, self.item_tensor):
            setattr(self, name, tensors[name].float().to(self.device))


class DomainNamesMixin(Recommender):
    """A model of a scenario group whose domains (its members, by domain index) have names, kept in the metadata."""

    domain_names: list[str] | None = None

    def set_domain_names(self, names: list[str]) -> None:
        """Name the domains (the member scenarios' slugs, by domain index)."""
        self.domain_names = [str(name) for name in names]

    def metadata(self) -> dict[str, Any]:
        return super().metadata() | {"domain_names": self.domain_names}

    def load_metadata(self, metadata: dict[str, Any]) -> None:
        self.domain_names = metadata.get("domain_names")


class TrainingMatrixRecommender(Recommender):
    """A model that scores from each user's binary training row (item-kNN, EASE): it keeps the training matrix as
    its ``train_crow`` and ``train_col`` CSR tensors, saved with its state."""

    user_matrix_tensors = ("train_crow", "train_col")

    def keep_training_matrix(self, data: InteractionData) -> None:
        """Take the sizes and the binary user × item matrix of ``data``, on the model's device."""
        self.n_users, self.n_items = data.n_users, data.n_items
        matrix = data.csr().to(self.device)
        self.train_crow, self.train_col = matrix.crow_indices(), matrix.col_indices()

    def training_rows(self, users: torch.Tensor) -> torch.Tensor:
        """The binary training rows of ``users`` (int64 on the model's device): float32 ``(len(users), n_items)``."""
        return csr_rows_dense(self.train_crow, self.train_col, users, self.n_items)

    def training_matrix_tensors(self) -> dict[str, torch.Tensor]:
        return {"train_crow": self.train_crow, "train_col": self.train_col}

    def load_training_matrix(self, tensors: dict[str, torch.Tensor]) -> None:
        self.train_crow = tensors["train_crow"].to(self.device)
        self.train_col = tensors["train_col"].to(self.device)


def optimizer_pass(optimizer: torch.optim.Optimizer, losses: Iterable[torch.Tensor], device: torch.device) -> float:
    """Step ``optimizer`` on each batch loss of ``losses`` in turn (each computed when its turn comes, after the
    previous step); returns the mean loss."""
    total, batches = torch.zeros((), device=device), 0
    for loss in losses:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total, batches = total + loss.detach(), batches + 1
    return float(total) / max(batches, 1)


class EarlyStopping:
    """Best-epoch tracking for iterative models, driven by validation NDCG@10.

    Call :meth:`report` after every epoch (or :meth:`observe`, to report it yourself): it measures NDCG@10 on
    ``validation`` (full ranking, training items excluded), copies the model's state tensors when the score
    improves, and sets :attr:`should_stop` after ``patience`` epochs without improvement (or at once when the
    progress callback raises :class:`BudgetSpent`).
    Call :meth:`restore_best` after the loop. With no validation set, or an empty one, it
    measures nothing and never stops the loop.

    ``measure`` adds figures of the model's own to each epoch's (no arguments, returns ``{name: value}``);
    ``metric`` names the figure that picks the best epoch, validation NDCG@10 by default, the higher the better
    unless ``lower_is_better`` (an error such as RMSE). A measured ``metric`` is there with or without a
    validation set. :meth:`restore_best` records the kept epoch on the
    model (``kept_epoch``): the best one, or the last when nothing picked one.
    """

    metric = "ndcg@10"

    def __init__(
        self,
        model: Recommender,
        train: InteractionData,
        validation: HeldOut | None,
        *,
        patience: int,
        measure: Callable[[], dict[str, float]] | None = None,
        metric: str | None = None,
        lower_is_better: bool = False,
    ) -> None:
        self.model, self.train, self.validation, self.patience = model, train, validation, patience
        self.measure, self.metric = measure, metric or type(self).metric
        # Scores are compared as "higher is better": an error is negated.
        self.sign = -1.0 if lower_is_better else 1.0
        self.best_score = -np.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_epoch: int | None = None
        self.epochs = 0  # observed so far
        self.epochs_without_improvement = 0
        self.budget_spent = False

    @classmethod
    def for_ratings(
        cls, model: Recommender, train: InteractionData, validation: HeldOut | None, *, patience: int
    ) -> EarlyStopping:
        """Stopping on the validation RMSE of ``model``'s predicted ratings (its MAE reported beside)."""
        measured = validation if validation is not None and validation.n_pairs else None
        return cls(
            model,
            train,
            validation,
            patience=patience,
            measure=lambda: rating_errors(model, measured) if measured is not None else {},
            metric="rmse",
            lower_is_better=True,
        )

    @property
    def should_stop(self) -> bool:
        return self.budget_spent or self.epochs_without_improvement >= self.patience

    def report(
        self, progress: ProgressCallback, *, phase: str, step: int, total: int, loss: float | None = None
    ) -> None:
        """Measure the epoch just trained (:meth:`observe`) and report it to ``progress``; when ``progress`` says
        the time ran out (:class:`BudgetSpent`), :attr:`should_stop` turns true and the loop keeps its best epoch."""
        report = EpochReport(phase=phase, step=step, total=total, loss=loss, validation=self.observe())
        try:
            progress(report)
        except BudgetSpent:
            self.budget_spent = True

    def observe(self) -> dict[str, float]:
        """Score the current model; returns ``{"ndcg@10": value}`` (empty without validation) and what
        ``measure`` gives."""
        self.epochs += 1
        scores = validation_scores(self.model, self.train, self.validation)
        if self.measure is not None:
            scores |= self.measure()
        if self.metric not in scores:
            return scores
        score = self.sign * scores[self.metric]
        if score > self.best_score:
            self.best_score, self.best_epoch, self.epochs_without_improvement = score, self.epochs, 0
            self.best_state = {key: value.detach().clone() for key, value in self.model.state_tensors().items()}
        else:
            self.epochs_without_improvement += 1
        return scores

    def restore_best(self) -> None:
        if self.best_state is not None:
            self.model.load_state_tensors(self.best_state)
        self.model.kept_epoch = self.best_epoch if self.best_state is not None else (self.epochs or None)

    def run(self, epochs: int, train_epoch: Callable[[], float], progress: ProgressCallback) -> None:
        """Up to ``epochs`` calls of ``train_epoch`` (which returns the epoch's loss), each reported with the
        validation measured after it, until the patience runs out; then the best epoch's state is put back."""
        for epoch in range(1, epochs + 1):
            loss = train_epoch()
            self.report(progress, phase="train", step=epoch, total=epochs, loss=loss)
            if self.should_stop:
                break
        self.restore_best()


def validation_scores(model: Recommender, train: InteractionData, validation: HeldOut | None) -> dict[str, float]:
    """``{"ndcg@10": mean over users with validation items}``, training items excluded.

    ``{}`` when there is no validation set or it is empty (a protocol without a validation share).
    """
    if validation is None or validation.n_pairs == 0:
        return {}
    return {EarlyStopping.metric: mean_ndcg(model, train, validation, k=10)}
