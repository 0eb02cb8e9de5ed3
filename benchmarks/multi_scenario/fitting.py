"""Training and timing one model the same way in every part: seeded fits, their time to the kept epoch, a cache of
teachers, scoring time, and the student's size rule."""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.algorithms.base import EpochReport, Recommender
from training.algorithms.distill import AGREEMENT
from training.algorithms.registry import get_algorithm
from training.evaluation.ranking import evaluate, scorer_for_test
from training.evaluation.splits import Split
from training.interactions import HeldOut, InteractionData

FIRST_SEED = 7  # every model's seed; the students part counts up from it
STUDENT_PATIENCE = 30  # a small student's validation score is flat for its first epochs


@dataclasses.dataclass
class FitSummary:
    """How one fit went; "best" is the epoch whose weights the model kept."""

    seconds_per_epoch: float
    seconds_to_best: float
    seconds_total: float
    epochs: int
    best_validation_ndcg: float
    best_teacher_agreement: float | None = None  # students that measure it only


class Timer:
    """Progress callback recording when each epoch ended and its validation figures."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.epochs: list[tuple[float, dict[str, float]]] = []

    def __call__(self, report: EpochReport) -> None:
        self.epochs.append((time.perf_counter() - self.start, report.validation))

    def summary(self, kept_epoch: int | None) -> FitSummary:
        """``kept_epoch`` is the model's (1-based; None: the last)."""
        if not self.epochs:
            return FitSummary(0.0, 0.0, 0.0, 0, 0.0)
        times = [seconds for seconds, _ in self.epochs]
        best = min(kept_epoch or len(times), len(times)) - 1
        kept = self.epochs[best][1]
        return FitSummary(
            seconds_per_epoch=statistics.median(np.diff([0.0, *times])),
            seconds_to_best=times[best],
            seconds_total=times[-1],
            epochs=len(times),
            best_validation_ndcg=kept.get("ndcg@10", 0.0),
            best_teacher_agreement=kept.get(AGREEMENT),
        )


def fit(
    algorithm: str, train, validation, device: str, epochs: int, *, before=None, seed: int = FIRST_SEED, **params
) -> tuple[Recommender, FitSummary]:
    model = get_algorithm(algorithm)({"epochs": epochs, **params}, device=device, seed=seed)
    if before is not None:
        before(model)
    timer = Timer()
    model.fit(train, timer, validation=validation)
    summary = timer.summary(model.kept_epoch)
    say(f"    {algorithm}: {summary.epochs} epochs, {summary.seconds_total:.0f} s")
    return model, summary


def fine_tune(pretrained, items: np.ndarray, train, validation, device: str, epochs: int, seed: int = FIRST_SEED):
    """(b): SASRec started from the group's ``pretrained`` model (its ``items`` are the scenario's), then trained."""
    start = lambda model: model.initialize_from(pretrained, items)  # noqa: E731
    return fit("sasrec", train, validation, device, epochs, before=start, seed=seed)


@dataclasses.dataclass(frozen=True)
class Training:
    """What every student of one scenario trains on: its training events, the validation it is measured on, the
    device and the epoch cap."""

    train: InteractionData
    validation: HeldOut
    device: str
    epochs: int


def student_default(name: str) -> Any:
    """distill's default for its hyperparameter ``name``."""
    return get_algorithm("distill")().hparams[name]


def fit_student(
    teacher, n_items: int, training: Training, layers: int | None = None, *, seed=FIRST_SEED, **params
) -> tuple[Recommender, FitSummary]:
    """(d): a student of ``teacher`` (same items) with hyperparameters ``params`` and ``layers`` encoder layers
    (None: distill's default), as large as a quarter of the teacher's parameters allows."""
    layers = student_default("layers") if layers is None else layers
    return fit(
        "distill",
        training.train,
        training.validation,
        training.device,
        training.epochs,
        seed=seed,
        layers=layers,
        embedding_size=student_size(teacher.parameter_count(), n_items, layers, **params),
        before=lambda model: model.attach_teacher(teacher, np.arange(n_items)),
        **{"early_stopping_patience": STUDENT_PATIENCE, **params},
    )


def student_size(teacher_parameters: int, n_items: int, layers: int, **params) -> int:
    """The largest multiple of the student's attention heads, from 32 down (and above a ``tail_size`` in
    ``params``), that keeps it within a quarter of the teacher's parameters (with many items the item table
    dominates both, so the size must shrink with the item count)."""
    student = get_algorithm("distill")
    heads = student_default("heads")
    smallest = max(4, params.get("tail_size", 0) + 1)  # the smallest embedding size a model takes is 4
    sizes = range(32 // heads * heads, smallest - 1, -heads)
    for size in sizes:
        shape = {"embedding_size": size, "layers": layers, **params}
        if student(shape).parameter_count_for(n_items) <= teacher_parameters / 4:
            return size
    return sizes[-1]


def remembered(cache: Path | None, key: str, train: Callable[[], tuple]) -> tuple[Recommender, FitSummary]:
    """``train()``'s ``(model, summary)``, saved under ``cache / key``; or the pair an earlier run saved there
    (``train`` is not called). Without a ``cache``, just ``train()``."""
    if cache is None:
        return train()
    folder = cache / key
    if (folder / "summary.json").exists():
        say(f"    {key}: from {folder}")
        return Recommender.load(folder), FitSummary(**json.loads((folder / "summary.json").read_text()))
    model, summary = train()
    model.save(folder)
    (folder / "summary.json").write_text(json.dumps(dataclasses.asdict(summary)))  # last: marks a complete entry
    return model, summary


def cache_key(dataset: str, role: str, device: str, epochs: int, seed: int = FIRST_SEED) -> str:
    """What a cached model depends on: its data and role, seed, epoch cap, device and torch's thread count (CPU
    float sums, and so the seeded teachers, depend on it)."""
    return f"{dataset}-{role}-seed{seed}-epochs{epochs}-{device}-threads{torch.get_num_threads()}"


def say(message: str) -> None:
    """Progress on standard error (the figures go to the results file)."""
    print(message, file=sys.stderr, flush=True)


def scores(model, tested, split: Split) -> dict[str, float]:
    """Test NDCG@10 and Recall@10 of ``tested`` (``model`` as it predicts the test events: after the training and
    validation events, :func:`~training.evaluation.ranking.scorer_for_test`), and ``model``'s NDCG@10 after the
    training events alone (how the test was read before), to show what reading the validation events moves."""
    metrics = evaluate(tested, split.train, split.test, ks=[10], exclude=split.validation)["metrics"]
    frozen = evaluate(model, split.train, split.test, ks=[10], exclude=split.validation)["metrics"]
    return {"ndcg": metrics["ndcg@10"], "recall": metrics["recall@10"], "ndcg_training_history": frozen["ndcg@10"]}


def ndcg_per_user(model, data: InteractionData, split: Split) -> np.ndarray:
    """Test NDCG@10 of each user with held-out items (after the training and validation events), in
    ``split.test.users_with_items()`` order (the same for any model)."""
    tested = scorer_for_test(model, data, split)
    return np.asarray(
        evaluate(tested, split.train, split.test, ks=[10], exclude=split.validation)["per_user"]["ndcg@10"]
    )


def latency_ms(model, n_users: int) -> float:
    """Median of 5 timed calls scoring every item for up to 256 users, after one warm-up call."""
    users = np.arange(min(256, n_users))
    model.score(users)
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        model.score(users)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)
