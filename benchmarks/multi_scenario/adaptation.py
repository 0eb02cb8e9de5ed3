"""(a)-(d): each scenario alone, pretrained on the group and fine-tuned, one STAR model, and students distilled from
the fine-tuned models (once, or over several seeds)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from benchmarks.multi_scenario.config import StudentSettings
from benchmarks.multi_scenario.data import GROUPS, Dataset, item_groups
from benchmarks.multi_scenario.fitting import (
    FIRST_SEED,
    FitSummary,
    Training,
    cache_key,
    fine_tune,
    fit,
    fit_student,
    latency_ms,
    ndcg_per_user,
    remembered,
    say,
    scores,
)
from training.algorithms.sequential import MixedItemEmbedding
from training.evaluation.compare import ratio_interval
from training.evaluation.ranking import scorer_for_test
from training.evaluation.splits import split_leave_last_out, split_subset

# Training settings recorded with each students' run.
STUDENT_TRAINING = ("learning_rate", "weight_decay")


@dataclasses.dataclass
class ScenarioAdaptation:
    """(a)-(d) on one scenario: its size, and each model's test NDCG@10 and Recall@10 with its fit's figures."""

    users: int
    items: int
    events: int
    alone: dict[str, float]
    finetuned: dict[str, float]
    star: dict[str, float]
    student: dict[str, float]


@dataclasses.dataclass
class Adaptation:
    pretrain: FitSummary
    star: FitSummary
    scenarios: dict[str, ScenarioAdaptation]


def summary_figures(summary: FitSummary) -> dict[str, float]:
    return {name: value for name, value in dataclasses.asdict(summary).items() if value is not None}


class DomainView:
    """A group-level model seen through one scenario's users and items (and domain, for STAR)."""

    def __init__(self, model, users: np.ndarray, items: np.ndarray, domain: int | None) -> None:
        self.model, self.users, self.items, self.domain = model, users, items, domain
        self.n_items = len(items)

    def score(self, users):
        kwargs = {"domain": self.domain} if self.domain is not None else {}
        return self.model.score(self.users[np.asarray(users)], **kwargs)[:, torch.from_numpy(self.items)]


def adaptation(dataset: Dataset, device: str, epochs: int) -> Adaptation:
    data = dataset.data
    group_split = split_leave_last_out(data)
    event_group = item_groups(dataset)[data.items]
    say("  the group (pretraining, STAR)")
    pretrained, pretrain_time = fit("sasrec", group_split.train, group_split.validation, device, epochs)
    star_train = dataclasses.replace(group_split.train, domains=event_group[group_split.train_events])
    star, star_time = fit(
        "star",
        star_train,
        group_split.validation,
        device,
        epochs,
        before=lambda model: model.set_domain_names([name for name, _ in GROUPS]),
    )
    star_tested = scorer_for_test(star, data, group_split)  # after each user's training and validation events
    results = Adaptation(pretrain_time, star_time, {})
    for index, (name, _) in enumerate(GROUPS):
        member, split, users, items = split_subset(data, group_split, event_group == index)
        say(f"  {name} (alone, fine-tuned, student)")
        train, validation = split.train, split.validation
        alone, alone_time = fit("sasrec", train, validation, device, epochs)
        tuned, tuned_time = fine_tune(pretrained, items, train, validation, device, epochs)
        student, student_time = fit_student(tuned, member.n_items, Training(train, validation, device, epochs))
        results.scenarios[name] = ScenarioAdaptation(
            users=member.n_users,
            items=member.n_items,
            events=member.n_events,
            alone={**scores(alone, scorer_for_test(alone, member, split), split), **summary_figures(alone_time)},
            finetuned={
                **scores(tuned, scorer_for_test(tuned, member, split), split),
                **_size_and_speed(tuned, tuned_time, member.n_users),
            },
            star=scores(DomainView(star, users, items, index), DomainView(star_tested, users, items, index), split),
            student={
                **scores(student, scorer_for_test(student, member, split), split),
                **_size_and_speed(student, student_time, member.n_users),
            },
        )
    return results


def _size_and_speed(model, summary: FitSummary, n_users: int) -> dict[str, float]:
    return {**summary_figures(summary), "parameters": model.parameter_count(), "latency_ms": latency_ms(model, n_users)}


def pretrained_scenarios(
    dataset: Dataset, device: str, epochs: int, scenarios, cache: Path | None = None
) -> Iterator[tuple]:
    """SASRec pretrained on the group's split (or found in ``cache``), then ``(name, member data, member split,
    member items, pretrained)`` for each of the named scenarios, in the rule's order."""
    data = dataset.data
    group_split = split_leave_last_out(data)
    event_group = item_groups(dataset)[data.items]
    say("  the group (pretraining)")
    pretrained, _ = remembered(
        cache,
        cache_key(dataset.name, "group", device, epochs),
        lambda: fit("sasrec", group_split.train, group_split.validation, device, epochs),
    )
    for index, (name, _) in enumerate(GROUPS):
        if name in scenarios:
            member, split, _, items = split_subset(data, group_split, event_group == index)
            yield name, member, split, items, pretrained


def student_seeds(
    dataset: Dataset, device: str, epochs: int, settings: StudentSettings, cache: Path | None = None
) -> dict[str, dict[str, float]]:
    """(b) per scenario (of those named) and its student (d) under each seed, from one pretrained group model: each
    seed's share of (b)'s NDCG@10, and the share of the seeds' means with a paired bootstrap interval over the test
    users. Each seed trains a student of each depth and keeps the one best on validation; the test ratings are read
    only for the kept one."""
    results = {}
    runs = pretrained_scenarios(dataset, device, epochs, settings.scenarios, cache)
    for name, member, split, items, pretrained in runs:
        entry, teachers, students, kept = {}, [], [], []
        training = Training(split.train, split.validation, device, epochs)
        for seed in range(FIRST_SEED, FIRST_SEED + settings.seeds):
            say(f"  {name}, seed {seed}")
            tuned, tuned_time = remembered(
                cache,
                cache_key(dataset.name, f"{name}-finetuned", device, epochs, seed),
                lambda: fine_tune(pretrained, items, split.train, split.validation, device, epochs, seed=seed),  # noqa: B023
            )
            entry[f"seed{seed}_finetuned_validation_ndcg"] = tuned_time.best_validation_ndcg
            student, student_time = _best_student(entry, tuned, member.n_items, training, seed, settings)
            kept.append(student)
            teachers.append(ndcg_per_user(tuned, member, split))
            students.append(ndcg_per_user(student, member, split))
            entry[f"seed{seed}_finetuned_ndcg"] = teachers[-1].mean()
            entry[f"seed{seed}_student_ndcg"] = students[-1].mean()
            entry[f"seed{seed}_student_share"] = students[-1].mean() / teachers[-1].mean()
            entry[f"seed{seed}_student_epochs"] = student_time.epochs
            entry[f"seed{seed}_student_layers"] = student.hparams["layers"]
        entry.update(
            _seeds_summary(teachers, students, kept, tuned, member.n_users, int(split.test.users_with_items().size))
        )
        entry["seeds"] = settings.seeds
        results[name.replace("-", "_")] = {key: round(float(value), 5) for key, value in entry.items()}
    return results


def _best_student(entry: dict, tuned, n_items: int, training: Training, seed: int, settings: StudentSettings):
    """A student of each depth in ``settings.layers``; the one with the best validation NDCG@10 (ties: fewer
    layers). Each one's validation figures go into ``entry``."""
    candidates = []
    for layers in settings.layers:
        student, summary = fit_student(tuned, n_items, training, layers, seed=seed, **settings.params)
        entry[f"seed{seed}_student_{layers}_layers_validation_ndcg"] = summary.best_validation_ndcg
        if summary.best_teacher_agreement is not None:
            entry[f"seed{seed}_student_{layers}_layers_teacher_agreement"] = summary.best_teacher_agreement
        candidates.append((student, summary))
    return max(candidates, key=lambda fitted: (fitted[1].best_validation_ndcg, -fitted[0].hparams["layers"]))


def _seeds_summary(teachers, students, kept, tuned, n_users: int, test_users: int) -> dict[str, float]:
    """The seeds' mean shares and the kept students' shape; the largest kept student stands for their size, the
    slowest for their speed."""
    teacher, pupil = np.mean(teachers, axis=0), np.mean(students, axis=0)
    largest = max(kept, key=lambda model: model.parameter_count())
    interval = ratio_interval(teacher, pupil)  # 95%, over the scenario's test users
    hparams = largest.hparams
    return {
        "test_users": test_users,
        "finetuned_ndcg": teacher.mean(),
        "student_ndcg": pupil.mean(),
        "student_share": pupil.mean() / teacher.mean(),
        "student_share_low": interval.low,
        "student_share_high": interval.high,
        "student_embedding_size": hparams["embedding_size"],
        "student_layers": hparams["layers"],
        # a scenario with no more films than the head gives every film the full size: no tail
        "student_tail_size": hparams["tail_size"] * isinstance(largest.network.items, MixedItemEmbedding),
        "student_head_items": hparams["head_items"],
        "student_serving_weight": hparams["serving_weight"],
        "student_select_by_teacher": hparams["select_by"] == "teacher",
        **{f"student_{name}": hparams[name] for name in STUDENT_TRAINING},
        "finetuned_parameters": tuned.parameter_count(),
        "student_parameters": largest.parameter_count(),
        "finetuned_latency_ms": latency_ms(tuned, n_users),
        "student_latency_ms": max(latency_ms(model, n_users) for model in kept),
    }
