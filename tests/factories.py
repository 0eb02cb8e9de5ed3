"""Small data built in code for tests."""

import time
from datetime import UTC, datetime, timedelta

import numpy as np

from catalog.services import EventRow, ItemRow, interactions_ingest, items_upsert
from scenarios.models import Scenario
from scenarios.services import scenario_create
from training.interactions import InteractionData
from training.models import FINISHED, RunStatus, TrainingRun
from training.services import training_run_create, training_run_execute, training_run_promote

START = datetime(2024, 1, 1, tzinfo=UTC)


def interactions(
    users, items, *, timestamps=None, weights=None, n_users=None, n_items=None, domains=None
) -> InteractionData:
    """Events of ``users`` on ``items`` (parallel lists), of weight 1 in list order unless ``weights`` and
    ``timestamps`` say otherwise; the counts default to the largest index plus one."""
    users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
    return InteractionData(
        n_users=n_users or int(users.max()) + 1,
        n_items=n_items or int(items.max()) + 1,
        users=users,
        items=items,
        weights=np.ones(len(users), dtype=np.float32) if weights is None else np.asarray(weights, dtype=np.float32),
        timestamps=np.arange(len(users)) if timestamps is None else np.asarray(timestamps, dtype=np.int64),
        domains=None if domains is None else np.asarray(domains, dtype=np.int64),
    )


def clustered_catalog(*, users: int = 40, items: int = 30, per_user: int = 10, seed: int = 0) -> None:
    """Users in three taste groups, each mostly choosing items of its own third of the catalogue."""
    rng = np.random.default_rng(seed)
    groups = ("Action", "Comedy", "Drama")
    items_upsert(
        items=[
            ItemRow(external_id=f"i{n}", title=f"Item {n}", categories=[groups[n * 3 // items]]) for n in range(items)
        ]
    )
    rows = []
    for user in range(users):
        group = user % 3
        own = np.arange(group * items // 3, (group + 1) * items // 3)
        chosen = rng.choice(own, size=min(per_user - 2, len(own)), replace=False).tolist()
        chosen += rng.choice(items, size=2, replace=False).tolist()
        for order, item in enumerate(dict.fromkeys(chosen)):
            rows.append(
                EventRow(
                    user=f"u{user}",
                    item=f"i{item}",
                    kind="rating",
                    value=float(rng.integers(3, 6)),
                    occurred_at=START + timedelta(hours=user * 50 + order),
                    event_id=f"t{user}-{item}",
                )
            )
    interactions_ingest(events=rows)


def scenario(**overrides) -> Scenario:
    return scenario_create(data={"slug": "movies", "name": "Movies", "algorithm": "popularity", **overrides})


def scenario_form(algorithm: str, hyperparameters: dict[str, str], **overrides: str) -> dict[str, str]:
    """The fields of the scenario page's form as a browser posts them for a new scenario "books" of ``algorithm``."""
    data = {
        "slug": "books",
        "name": "Books",
        "description": "",
        "include_categories": "",
        "exclude_categories": "",
        "event_weights": "rating:1",
        "min_value": "",
        "min_user_events": "1",
        "min_item_events": "1",
        "split": "random",
        "validation_share": "0.1",
        "test_share": "0.1",
        "k_list": "5, 10",
        "algorithm": algorithm,
        "compute_queue": "auto",
        "seed": "1",
        "default_k": "10",
        "exclude_seen": "on",
        "schedule": "",
    }
    fields = {f"hp__{algorithm}__{name}": value for name, value in hyperparameters.items()}
    return {**data, **fields, **overrides}


def succeeded(run: TrainingRun, *, timeout: float = 300) -> TrainingRun:
    """``run`` trained here on the CPU, or by a test worker that claimed it first; it must succeed. Read back once
    done."""
    training_run_execute(run_id=run.pk, device="cpu")  # a run a worker claimed is left to it
    deadline = time.monotonic() + timeout
    while (run := TrainingRun.objects.get(pk=run.pk)).status not in FINISHED and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run.status == RunStatus.SUCCEEDED, (run.status, run.error)
    return run


def trained(movies: Scenario, algorithm: str, **options) -> TrainingRun:
    """A run of ``movies`` (``options`` as for ``training_run_create``) trained here on the CPU, read back."""
    return succeeded(training_run_create(scenario=movies, algorithm=algorithm, **options))


def live_run(movies: Scenario, algorithm: str) -> TrainingRun:
    """A run of ``movies`` trained here on the CPU and promoted: what serves the scenario."""
    run = trained(movies, algorithm)
    training_run_promote(run=run)
    return run


def succeeded_trial(study, algorithm: str, number: int, validation: dict[str, float], **fields) -> TrainingRun:
    """A trial row of ``study`` (no worker) that succeeded with the ``validation`` metrics: its algorithm, trial
    number and whatever else the test sets."""
    return TrainingRun.objects.create(
        scenario=study.scenario,
        algorithm=algorithm,
        study=study,
        trial_number=number,
        status=RunStatus.SUCCEEDED,
        validation_metrics=validation,
        **fields,
    )
