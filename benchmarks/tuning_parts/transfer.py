"""Transfer without order: the best group-level model of three scenarios against the best model of each scenario
alone, on events whose order is destroyed.

    .venv/bin/python -m benchmarks.tuning --part transfer [--transfer-trials 10] [--transfer-seed 7]

Data: ml-latest-small (every rating one interaction), split into three scenarios by the multi-scenario benchmark's
rule (``benchmarks.multi_scenario.data.GROUPS``): each film belongs to the first of action-thriller, comedy-romance
and drama-other (everything else) whose genres it has; a scenario's events are the ratings of its films. The order
is destroyed: timestamps are replaced by a random permutation, and the group's events are split at random per user
(80/10/10); each scenario keeps the parts of that split on its films (as a member of a group is split on the
platform).

Models, each tuned by its own Optuna TPE study of ``--transfer-trials`` trials over its declared ``l2`` range (the
first trial at the default), on validation NDCG@10 ranked within the scenario's films:

- alone: EASE on the scenario's events, scored from the user's history in the scenario;
- union: EASE on the group's events (no member labels), scored from the user's whole history, ranking the
  scenario's films;
- adapted: ``adapted_ease`` on the group's events, each scenario's transfer chosen on its validation events.

Both EASE models are fitted by ``adapted_ease``'s closed form without member labels (one member: the same solution
as ``ease``, solved in the users' space, which the tests check). The group-level studies maximise the mean over the
scenarios of the validation NDCG@10; the better of union and adapted on it is the group-level model. Test NDCG@10
(training and validation films excluded) of that model against each scenario's alone: the change on the smallest
scenario (by events) with a 95% paired bootstrap interval over its test users, and the worst change of the three.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import optuna
import torch

from benchmarks.multi_scenario.data import GROUPS, dataset_load, item_groups
from benchmarks.results_io import ROOT
from training.algorithms.adapted_ease import AdaptedEASE
from training.evaluation.compare import ratio_interval
from training.evaluation.ranking import evaluate, mean_ndcg
from training.evaluation.splits import Split, split_random, split_subset
from training.interactions import InteractionData
from training.tuning.space import default_space, suggest

TARGETS = {"transfer_smallest_member_gain": 0.10, "transfer_worst_member_change": -0.01}
GROUP_MODELS = ("union", "adapted")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--transfer-data", type=Path, default=ROOT.parent / "shared" / "data" / "ml-latest-small", help="MovieLens."
    )
    parser.add_argument("--transfer-trials", type=int, default=10, help="Trials of each model's study.")
    parser.add_argument("--transfer-seed", type=int, default=7, help="Seed of the order, the split and the studies.")
    parser.add_argument("--transfer-device", default="cpu", help="Where the models are fitted.")


@dataclasses.dataclass(frozen=True)
class Member:
    name: str
    data: InteractionData  # the member's events, users and films numbered densely
    split: Split
    users: np.ndarray  # (n_users',) the group's index of each member user
    items: np.ndarray  # (n_items',) the group's index of each member film


@dataclasses.dataclass(frozen=True)
class Group:
    data: InteractionData  # every event, its member in ``domains``
    split: Split
    members: list[Member]


def unordered_group(*, folder: Path, seed: int) -> Group:
    """ml-latest-small with its timestamps permuted, split at random per user, and each member's part of it."""
    dataset = dataset_load(name=folder.name, folder=folder)
    rng = np.random.default_rng(seed)
    data = dataclasses.replace(
        dataset.data,
        timestamps=rng.permutation(dataset.data.n_events).astype(np.int64),
        domains=item_groups(dataset)[dataset.data.items],
    )
    split = split_random(data, seed=seed)
    members = [
        Member(name, *split_subset(data, split, data.domains == index)) for index, (name, _) in enumerate(GROUPS)
    ]
    return Group(data, split, members)


class MemberView:
    """A group-level model ranking one member's films for its users (through the member's indexes)."""

    def __init__(self, model: AdaptedEASE, member: Member, domain: int | None) -> None:
        self.model, self.member, self.domain = model, member, domain
        self.items = torch.from_numpy(member.items)

    def score(self, users: np.ndarray) -> torch.Tensor:
        return self.model.score(self.member.users[np.asarray(users)], domain=self.domain)[:, self.items]


Fitted = tuple[float, dict, object]  # (validation objective, hyperparameters, model)


def tuned(fit: Callable[[dict], tuple[float, object]], *, trials: int, seed: int) -> Fitted:
    """The best of ``trials`` TPE trials over ``adapted_ease``'s declared ranges (the first at the defaults)."""
    space = {"adapted_ease": default_space("adapted_ease")}
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial({f"adapted_ease.{param.name}": param.default for param in AdaptedEASE.params if param.search})
    best: list[Fitted] = []

    def objective(trial: optuna.Trial) -> float:
        _, params = suggest(trial, ["adapted_ease"], space)
        value, model = fit(params)
        if not best or value > best[0][0]:
            best[:] = [(value, params, model)]
        return value

    study.optimize(objective, n_trials=trials)
    return best[0]


def group_fit(group: Group, *, adapted: bool, device: str) -> Callable[[dict], tuple[float, object]]:
    """Fits a group-level model; its objective is the members' mean validation NDCG@10 within their films."""
    train = group.split.train if adapted else dataclasses.replace(group.split.train, domains=None)

    def fit(params: dict) -> tuple[float, object]:
        model = AdaptedEASE(params, device=device)
        if adapted:
            model.set_domain_names([member.name for member in group.members])
        model.fit(train, validation=group.split.validation if adapted else None)
        views = [MemberView(model, member, index if adapted else None) for index, member in enumerate(group.members)]
        values = [mean_ndcg(view, view.member.split.train, view.member.split.validation) for view in views]
        return float(np.mean(values)), model

    return fit


def alone_fit(member: Member, *, device: str) -> Callable[[dict], tuple[float, object]]:
    def fit(params: dict) -> tuple[float, object]:
        model = AdaptedEASE(params, device=device)
        model.fit(member.split.train)
        return mean_ndcg(model, member.split.train, member.split.validation), model

    return fit


def test_ndcg(scorer, member: Member) -> np.ndarray:
    """Each test user's NDCG@10 within the member's films (training and validation films excluded)."""
    split = member.split
    result = evaluate(scorer, split.train, split.test, ks=[10], exclude=split.validation)
    return np.asarray(result["per_user"]["ndcg@10"])


def run(args: argparse.Namespace) -> dict:
    started, load = time.perf_counter(), os.getloadavg()[0]
    torch.manual_seed(args.transfer_seed)
    group = unordered_group(folder=args.transfer_data, seed=args.transfer_seed)
    trials, seed = args.transfer_trials, args.transfer_seed
    group_models = {}
    for name in GROUP_MODELS:
        _say(f"  {name} (the group, {trials} trials)")
        fit = group_fit(group, adapted=name == "adapted", device=args.transfer_device)
        group_models[name] = tuned(fit, trials=trials, seed=seed)
    best = max(GROUP_MODELS, key=lambda name: group_models[name][0])
    figures: dict = {
        "transfer_trials": trials,
        "transfer_seed": seed,
        "transfer_group_model": best,
        **{f"transfer_{name}_l2": group_models[name][1]["l2"] for name in GROUP_MODELS},
        **{f"transfer_{name}_validation_ndcg": group_models[name][0] for name in GROUP_MODELS},
    }
    changes = {}  # member name → (alone's, the best group-level model's) test NDCG@10 per user
    for index, member in enumerate(group.members):
        _say(f"  {member.name} alone ({trials} trials)")
        member_figures, per_user = _member_figures(member, index, group_models, args)
        figures |= member_figures
        changes[member.name] = (per_user["alone"], per_user[best])
    figures |= _change_figures(group, changes)
    figures |= {
        "transfer_seconds": time.perf_counter() - started,
        "transfer_load_average": load,
        "transfer_torch_threads": torch.get_num_threads(),
        **{f"target_{key}": value for key, value in TARGETS.items()},
    }
    return {key: round(value, 5) if isinstance(value, float) else value for key, value in figures.items()}


def _member_figures(
    member: Member, index: int, group_models: dict, args: argparse.Namespace
) -> tuple[dict, dict[str, np.ndarray]]:
    """The member's size, its alone model's and each group-level model's test NDCG@10 and change; and the
    per-user test NDCG@10 of each (``alone`` and the group-level models' names)."""
    fit = alone_fit(member, device=args.transfer_device)
    _, alone_params, alone = tuned(fit, trials=args.transfer_trials, seed=args.transfer_seed)
    per_user = {"alone": test_ndcg(alone, member)}
    for name in GROUP_MODELS:
        view = MemberView(group_models[name][2], member, index if name == "adapted" else None)
        per_user[name] = test_ndcg(view, member)
    key, alone_mean = f"transfer_{member.name.replace('-', '_')}", per_user["alone"].mean()
    figures = {
        f"{key}_events": member.data.n_events,
        f"{key}_users": member.data.n_users,
        f"{key}_items": member.data.n_items,
        f"{key}_test_users": len(per_user["alone"]),
        f"{key}_alone_l2": alone_params["l2"],
        f"{key}_alone_ndcg": float(alone_mean),
        f"{key}_adapted_transfer": float(group_models["adapted"][2].transfers[index]),
    }
    for name in GROUP_MODELS:
        figures[f"{key}_{name}_ndcg"] = float(per_user[name].mean())
        figures[f"{key}_{name}_change"] = float(per_user[name].mean() / alone_mean - 1)
    return figures, per_user


def _change_figures(group: Group, changes: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    """The smallest member's change with its 95% paired bootstrap interval, and the worst member's change."""
    smallest = min(group.members, key=lambda member: member.data.n_events).name
    interval = ratio_interval(*changes[smallest])
    return {
        "transfer_smallest_member": smallest,
        "transfer_smallest_member_gain": interval.mean - 1,
        "transfer_smallest_member_gain_low": interval.low - 1,
        "transfer_smallest_member_gain_high": interval.high - 1,
        "transfer_worst_member_change": min(grouped.mean() / alone.mean() - 1 for alone, grouped in changes.values()),
    }


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def report_rows(figures: dict) -> Iterator[tuple[str, str, str, bool | None]]:
    if "transfer_smallest_member_gain" not in figures:
        return
    gain, worst = figures["transfer_smallest_member_gain"], figures["transfer_worst_member_change"]
    model, smallest = figures["transfer_group_model"], figures["transfer_smallest_member"]
    low, high = figures["transfer_smallest_member_gain_low"], figures["transfer_smallest_member_gain_high"]
    interval = f"{low:+.1%} to {high:+.1%}"
    yield (
        f"Transfer without order (ml-latest-small, order destroyed): NDCG@10 of the best group-level model ({model}) "
        f"against the best model of {smallest} alone, the smallest scenario",
        f"{gain:+.1%} (95% interval {interval})",
        f"≥ {TARGETS['transfer_smallest_member_gain']:+.0%}",
        gain >= TARGETS["transfer_smallest_member_gain"],
    )
    yield (
        "Transfer without order: the worst scenario's NDCG@10 change, group-level model against alone",
        f"{worst:+.1%}",
        f"≥ {TARGETS['transfer_worst_member_change']:+.0%}",
        worst >= TARGETS["transfer_worst_member_change"],
    )
    for name, _ in GROUPS:
        key = f"transfer_{name.replace('-', '_')}"
        if f"{key}_alone_ndcg" in figures:
            yield (
                f"Transfer without order, {name}: NDCG@10 alone → union → adapted (transfer chosen)",
                f"{figures[f'{key}_alone_ndcg']:.4f} → {figures[f'{key}_union_ndcg']:.4f} → "
                f"{figures[f'{key}_adapted_ndcg']:.4f} ({figures[f'{key}_adapted_transfer']:g})",
                "–",
                None,
            )
