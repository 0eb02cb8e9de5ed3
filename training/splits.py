"""The split a run is evaluated on, recorded on the run (``TrainingRun.split``).

A split is decided by the data it cuts (the slice of the scenario whose split it is: the group's for a
member, with the sha256 of that data as the snapshot id), the protocol (``random``, ``temporal`` or
``leave_last_out``), the validation and test shares (random and temporal only) and, for ``random`` only, a
seed. A run records that *plan* when it is queued, and the worker adds digests of the (user, item) pairs it
held out for validation and test, in database ids. Two runs with the same test digest were tested on the
same pairs, which is what a paired comparison needs. A child run (fine-tune, student, group member started
from a group run) reuses its parent's plan, so its test pairs cannot be in the parent's training data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from recsys_site.errors import ValidationFailed
from scenarios.models import SLICE_FIELDS, Scenario, SplitKind
from training.data import training_data_load
from training.interactions import HeldOut
from training.models import TrainingRun

# What decides a split: equal keys, equal splits of equal data.
PLAN_FIELDS = ("source", "protocol", "validation_share", "test_share", "seed", "snapshot")
PROTOCOL_NAMES = {
    SplitKind.RANDOM: "random",
    SplitKind.TEMPORAL: "temporal",
    SplitKind.LEAVE_LAST_OUT: "leave-last-out",
}


def split_plan(*, scenario: Scenario, seed: int | None = None, read_data: bool = True) -> dict[str, Any]:
    """The split a run of ``scenario`` queued now would use: the scenario's own, or a member's group's.

    ``seed`` is the run's seed; a member is split by its group's seed, and only a random split has one. The
    snapshot (the sha256 of the data to split) reads every event of the slice; without ``read_data`` it is left
    None, for the worker to record the data it splits.
    """
    source = scenario.parent or scenario
    if scenario.parent_id is not None or seed is None:
        seed = source.seed
    return {
        "source": source.slug,
        "source_id": source.pk,
        "protocol": source.split,
        "validation_share": None if source.split == SplitKind.LEAVE_LAST_OUT else float(source.validation_share),
        "test_share": None if source.split == SplitKind.LEAVE_LAST_OUT else float(source.test_share),
        "seed": int(seed) if source.split == SplitKind.RANDOM else None,
        "snapshot": training_data_load(scenario=source).snapshot()["sha256"] if read_data else None,
    }


def split_for_run(*, scenario: Scenario, seed: int | None, parent: TrainingRun | None) -> dict[str, Any]:
    """The split the run will use: its scenario's (a member's group's) as it is now; a child reuses its parent's
    recorded split, and a parent split another way (other data, protocol, shares or seed) is refused, since it
    may have trained on this run's test events. Only a child's check reads the data: a run of its own records the
    data its worker splits, and queueing it reads no event."""
    plan = split_plan(scenario=scenario, seed=seed, read_data=parent is not None)
    if parent is None:
        return plan
    recorded = parent.split
    if not recorded.get("test_digest"):
        raise ValidationFailed(
            "parent split unknown",
            detail={
                "parent": [
                    f"run {parent.pk} recorded no split, so it cannot be shown not to have seen this run's test events"
                ]
            },
        )
    if plan["seed"] is not None and (seed is None or scenario.parent_id is not None):
        plan["seed"] = recorded.get("seed")  # the child takes its parent's split as it is
    changes = split_changes(recorded, plan)
    if changes:
        raise ValidationFailed(
            "parent split differently",
            detail={
                "parent": [
                    f"run {parent.pk} was split {split_label(recorded)}; this run would be split {split_label(plan)} "
                    f"({'; '.join(changes)}): the parent may have trained on this run's test events"
                ]
            },
        )
    return plan


def split_key(split: Mapping[str, Any]) -> tuple:
    """What identifies a split (equal keys: the same pairs held out); ``()`` for a run that recorded none."""
    if not split:
        return ()
    return tuple(split.get(name) for name in PLAN_FIELDS)


def split_protocol(split: Mapping[str, Any]) -> dict[str, Any]:
    """The plan as the protocol ``training.data.protocol_split`` reads."""
    return {
        "split": split["protocol"],
        "validation_share": split["validation_share"],
        "test_share": split["test_share"],
    }


def split_label(split: Mapping[str, Any]) -> str:
    """A short human label: ``random 80/10/10 · seed 42 · data 1a2b3c4d``, with the group for a member's."""
    if not split:
        return "split not recorded"
    parts = [PROTOCOL_NAMES.get(split["protocol"], str(split["protocol"]))]
    if split.get("test_share") is not None:
        validation, test = split["validation_share"], split["test_share"]
        parts[0] += f" {_percent(1 - validation - test)}/{_percent(validation)}/{_percent(test)}"
    if split.get("seed") is not None:
        parts.append(f"seed {split['seed']}")
    if split.get("snapshot"):
        parts.append(f"data {str(split['snapshot'])[:8]}")
    parts.append(f"of {split.get('source', '?')}")
    return " · ".join(parts)


def split_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What differs between two splits, in words (empty when they are the same split)."""
    if not before or not after:
        return [] if not before and not after else ["split not recorded on one of them"]
    changes = []
    if before.get("source") != after.get("source"):
        changes.append(f"split of {before.get('source')} → of {after.get('source')}")
    if before.get("protocol") != after.get("protocol"):
        changes.append(f"protocol {before.get('protocol')} → {after.get('protocol')}")
    for name in ("validation_share", "test_share", "seed"):
        if before.get(name) != after.get(name) and before.get("protocol") == after.get("protocol"):
            changes.append(f"{name.replace('_', ' ')} {before.get(name)} → {after.get(name)}")
    if before.get("snapshot") != after.get("snapshot"):
        changes.append(f"data {str(before.get('snapshot'))[:8]} → {str(after.get('snapshot'))[:8]}")
    return changes


def same_test_set(first: Mapping[str, Any], second: Mapping[str, Any]) -> bool:
    """Whether two runs were tested on the same (user, item) pairs: a paired comparison needs that."""
    digest = first.get("test_digest") if first else None
    return bool(digest) and second is not None and digest == second.get("test_digest")


def pairs_digest(*, held_out: HeldOut, user_ids: np.ndarray, item_ids: np.ndarray) -> str:
    """sha256 of a held-out set's (user id, item id) pairs in database ids, in a canonical order."""
    users = np.repeat(np.arange(held_out.n_users), held_out.counts())
    pairs = np.stack([user_ids[users], item_ids[held_out.items]], axis=1).astype(np.int64)
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    return hashlib.sha256(np.ascontiguousarray(pairs).tobytes()).hexdigest()


def split_record(
    *, plan: Mapping[str, Any], snapshot: str, validation: HeldOut, test: HeldOut, user_ids: Any, item_ids: Any
) -> dict[str, Any]:
    """The plan as the worker carried it out: the snapshot it split and digests of what it held out."""
    user_ids, item_ids = np.asarray(user_ids), np.asarray(item_ids)
    return {
        **{name: plan.get(name) for name in ("source_id", *PLAN_FIELDS)},
        "snapshot": snapshot,
        "test_digest": pairs_digest(held_out=test, user_ids=user_ids, item_ids=item_ids),
        "test_pairs": int(test.n_pairs),
        "validation_digest": pairs_digest(held_out=validation, user_ids=user_ids, item_ids=item_ids),
        "validation_pairs": int(validation.n_pairs),
    }


def _percent(share: float) -> str:
    return f"{round(share * 100):g}"


# --- what a run was measured on, as a timeline shows it ------------------------------------------------------


def run_settings(run: TrainingRun) -> dict[str, Any]:
    """The settings that decide what a run's metrics measure: its slice and its split (without the data snapshot,
    which new events change; a run recorded before splits has its protocol's; ``{}`` when neither is recorded)."""
    if not run.split and not run.protocol:
        return {}
    split = run.split or {"source": run.scenario.slug, "protocol": run.protocol.get("split")}
    settings = {name.replace("_", " "): run.protocol.get(name) for name in SLICE_FIELDS}
    settings["split of"] = split.get("source")
    settings["protocol"] = split.get("protocol")
    for name in ("validation_share", "test_share", "seed"):
        settings[name.replace("_", " ")] = split.get(name, run.protocol.get(name))
    return settings


def settings_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """``name old → new`` for each setting that differs (``unset`` for a setting without a value)."""
    return [
        f"{name} {_shown(before.get(name))} → {_shown(value)}"
        for name, value in after.items()
        if before.get(name) != value
    ]


def _shown(value: Any) -> str:
    return "unset" if value is None or value == [] or value == {} else str(value)


def scenario_split_label(*, scenario: Scenario) -> str:
    """The split the scenario's next run would use, from its settings (the data is read when the run is queued)."""
    source = scenario.parent or scenario
    leave_last_out = source.split == SplitKind.LEAVE_LAST_OUT
    return split_label(
        {
            "source": source.slug,
            "protocol": source.split,
            "validation_share": None if leave_last_out else source.validation_share,
            "test_share": None if leave_last_out else source.test_share,
            "seed": source.seed if source.split == SplitKind.RANDOM else None,
        }
    )
